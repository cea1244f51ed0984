//! The rule table, written by this project for CRS's paranoia level 1 categories and ids.
//!
//! Each rule: a CRS id, paranoia level, severity, message, targets, transformations, literal
//! prefilter and operator. The prefilter lists literals (lowercase; matched ASCII
//! case-insensitively on the transformed value) of which at least one must occur for the
//! operator to run: that is what keeps most regexes from ever running (or compiling). A rule
//! with an empty prefilter always runs its operator, so those are kept cheap.
//!
//! Patterns are written for the transformed value (mostly lowercased), matched on bytes with
//! Unicode off.

use super::input::{Extracted, RequestView, Target, Target::*};
use super::transform::{Transform, Transform::*};
use super::CrsSeverity::{self, *};

pub(crate) struct CheckCtx<'c, 'a> {
    pub req: Option<&'c RequestView<'a>>,
    pub ex: &'c Extracted<'a>,
}

pub(crate) type CheckFn = for<'c, 'a> fn(&CheckCtx<'c, 'a>) -> Option<String>;

pub(crate) enum Op {
    /// A regex over the transformed value.
    Rx(&'static str),
    /// Phrase match: the prefilter literals themselves are the phrases.
    Pm,
    Sqli,
    Xss,
    /// A check over the whole request or response (protocol rules).
    Check(CheckFn),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stage {
    Request,
    Response,
}

pub(crate) struct RuleDef {
    pub id: u32,
    pub pl: u8,
    pub severity: CrsSeverity,
    pub msg: &'static str,
    pub phase: Stage,
    pub targets: &'static [Target],
    pub tf: &'static [Transform],
    pub lits: &'static [&'static str],
    pub op: Op,
}

// Target sets (CRS's usual lists).
const ARGS_ALL: &[Target] = &[Args, ArgsNames, Cookies, CookieNames];
const ARGS_ALL_H: &[Target] = &[Args, ArgsNames, Cookies, CookieNames, UserAgent, Referer];
const ARGS_ALL_HP: &[Target] = &[
    Args,
    ArgsNames,
    Cookies,
    CookieNames,
    UserAgent,
    Referer,
    Path,
];

// Transformation pipelines.
const T_LOW: &[Transform] = &[UrlDecodeUni, Lowercase];
const T_RAW_LOW: &[Transform] = &[Lowercase];
const T_XSS: &[Transform] = &[
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    RemoveNulls,
    Lowercase,
];
const T_SQL: &[Transform] = &[
    UrlDecodeUni,
    ReplaceComments,
    RemoveNulls,
    CompressWhitespace,
    Lowercase,
];
// ShellUnquote drops quoting characters whatever the letters' case, so it commutes with
// Lowercase; lowercasing last lets the engine share the literal scan with the other pipelines.
const T_SHELL: &[Transform] = &[UrlDecodeUni, ShellUnquote, Lowercase];
const T_CMD: &[Transform] = &[UrlDecodeUni, CmdLine];
const T_PATH: &[Transform] = &[UrlDecodeUni, RemoveNulls, NormalisePath, Lowercase];
const T_NONE: &[Transform] = &[];

const fn r(
    id: u32,
    severity: CrsSeverity,
    msg: &'static str,
    targets: &'static [Target],
    tf: &'static [Transform],
    lits: &'static [&'static str],
    op: Op,
) -> RuleDef {
    RuleDef {
        id,
        pl: 1,
        severity,
        msg,
        phase: Stage::Request,
        targets,
        tf,
        lits,
        op,
    }
}

const fn resp(
    id: u32,
    severity: CrsSeverity,
    msg: &'static str,
    lits: &'static [&'static str],
    op: Op,
) -> RuleDef {
    RuleDef {
        id,
        pl: 1,
        severity,
        msg,
        phase: Stage::Response,
        targets: &[ResBody],
        tf: T_RAW_LOW,
        lits,
        op,
    }
}

const fn check(id: u32, severity: CrsSeverity, msg: &'static str, f: CheckFn) -> RuleDef {
    RuleDef {
        id,
        pl: 1,
        severity,
        msg,
        phase: Stage::Request,
        targets: &[],
        tf: T_NONE,
        lits: &[],
        op: Op::Check(f),
    }
}

const UNIX_CMDS: &str = r"(?:cat|tac|nl|more|less|head|tail|wget|curl|nc|ncat|netcat|socat|telnet|bash|sh|zsh|ksh|dash|csh|python[23]?|perl|ruby|php|node|lua|nslookup|dig|host|ping|traceroute|echo|printf|rm|chmod|chown|touch|mkfifo|busybox|base64|xxd|tftp|ftp|nohup|awk|gawk|sed|find|xargs|crontab|useradd|passwd|sudo|su|kill|pkill|killall|tar|gcc|sleep|timeout|openssl|scp|ssh|cp|mv|dd)";
const UNIX_NOARG: &str = r"(?:id|whoami|uname|ls|pwd|ps|ifconfig|hostname|netstat|env|printenv|w|who|last|groups|lsof|reboot|shutdown|halt)";

pub(crate) fn table() -> Vec<RuleDef> {
    vec![
        // ---- 913: scanner detection ----
        r(913100, Critical, "Found User-Agent associated with security scanner", &[UserAgent], T_RAW_LOW,
          &["nikto", "sqlmap", "nmap scripting engine", "nessus", "acunetix", "w3af", "wpscan", "dirbuster", "gobuster",
            "masscan", "zgrab", "netsparker", "openvas", "arachni", "havij", "nuclei", "wfuzz", "fuzz faster u fool",
            "feroxbuster", "whatweb", "skipfish", "commix", "zmeu", "sqlninja", "paros", "webinspect", "appscan",
            "fimap", "jbrofuzz", "bsqlbf", "dirb/", "xsser", "struts-pwn", "morfeus", "jorgee", "nmap nse",
            "grabber", "webshag", "brutus", "httpx - open-source"], Op::Pm),
        // ---- 920: protocol enforcement ----
        check(920100, Warning, "Invalid HTTP Request Line", c_request_line),
        check(920160, Critical, "Content-Length HTTP header is not numeric", c_content_length),
        check(920170, Critical, "GET or HEAD Request with Body Content", c_get_with_body),
        check(920171, Critical, "GET or HEAD Request with Transfer-Encoding", c_get_with_te),
        check(920181, Warning, "Content-Length and Transfer-Encoding headers present", c_cl_and_te),
        check(920190, Warning, "Range: Invalid Last Byte Value", c_range),
        r(920220, Warning, "URL Encoding Abuse Attack Attempt", &[Uri], T_NONE, &["%"],
          Op::Rx(r"(?i)%(?:$|[^0-9a-fu]|[0-9a-f](?:$|[^0-9a-f]))")),
        r(920270, Critical, "Invalid character in request (null character)", &[Uri, Args, ArgsNames, Headers, Cookies], T_NONE,
          &["\0"], Op::Rx(r"\x00")),
        check(920280, Warning, "Request Missing a Host Header", c_missing_host),
        check(920290, Warning, "Empty Host Header", c_empty_host),
        check(920310, Notice, "Request Has an Empty Accept Header", c_empty_accept),
        check(920330, Notice, "Empty User Agent Header", c_empty_ua),
        check(920340, Notice, "Request Containing Content, but Missing Content-Type header", c_body_no_ct),
        check(920350, Warning, "Host header is a numeric IP address", c_host_ip),
        check(920420, Critical, "Request content type is not allowed by policy", c_content_type_allowed),
        check(920430, Critical, "HTTP protocol version is not allowed by policy", c_protocol),
        r(920440, Critical, "URL file extension is restricted by policy", &[Basename], T_RAW_LOW, &["."],
          Op::Rx(r"\.(?:asa|asax|backup|bak|bat|cdx|cer|cfg|cmd|com|config|conf|cs|csproj|csr|dat|db|dbf|dll|dos|htr|htw|ida|idc|idq|inc|ini|key|licx|lnk|log|mdb|old|pass|pdb|pol|printer|pwd|rdb|resources|resx|sql|swp|sys|vb|vbs|vbproj|vsdisco|webinfo|xsd|xsx|sqlite|sqlite3|pem|jks|kdbx)$")),
        r(920450, Critical, "HTTP header is restricted by policy", &[HeaderNames], T_RAW_LOW, &[],
          Op::Rx(r"^(?:proxy|lock-token|content-range|if|x-http-method-override|x-http-method|x-method-override|x-middleware-subrequest)$")),
        check(920470, Critical, "Illegal Content-Type header", c_content_type_format),
        check(920480, Critical, "Request content type charset is not allowed by policy", c_charset),
        r(920500, Critical, "Attempt to access a backup or working file", &[Basename], T_RAW_LOW, &["~", ".sw", ".#"],
          Op::Rx(r"(?:~$|^\.#|\.sw[op]$)")),
        check(920999, Critical, "Failed to parse request body (body processor error)", c_body_error),
        // ---- 921: protocol attacks ----
        r(921110, Critical, "HTTP Request Smuggling Attack", &[Args, ArgsNames, Cookies, Body], T_RAW_LOW, &["http/"],
          Op::Rx(r"[\r\n]\W*(?:get|post|head|options|connect|put|delete|trace|track|patch|propfind|proppatch|mkcol|copy|move|lock|unlock)\s+\S+\s+http/\d")),
        r(921120, Critical, "HTTP Response Splitting Attack", &[Args, ArgsNames, Cookies], T_RAW_LOW,
          &["content-type", "content-length", "set-cookie", "location"],
          Op::Rx(r"[\r\n]\W*(?:content-(?:type|length)|set-cookie|location)\s*:\s*\S")),
        r(921130, Critical, "HTTP Response Splitting Attack", &[Args, ArgsNames, Cookies], T_RAW_LOW, &["http/", "<html", "<meta"],
          Op::Rx(r"[\r\n]\W*(?:http/\d|<(?:html|meta)\b)")),
        check(921140, Critical, "HTTP Header Injection Attack via headers", c_header_crlf),
        r(921150, Critical, "HTTP Header Injection Attack via payload (CR/LF detected)", &[ArgsNames], T_NONE, &["\n", "\r"],
          Op::Rx(r"[\r\n]")),
        r(921160, Critical, "HTTP Header Injection Attack via payload (CR/LF and header-name detected)", &[Args, ArgsNames], T_LOW,
          &["\n", "\r"],
          Op::Rx(r"[\r\n]+(?:location|refresh|(?:set-)?cookie|x-forwarded-(?:for|host|server)|host|via|x-remote-ip|x-remote-addr|x-originating-ip|access-control-allow-origin)\s*:")),
        r(921190, Critical, "HTTP Splitting (CR/LF in request filename detected)", &[Path], T_NONE, &["\n", "\r"], Op::Rx(r"[\r\n]")),
        r(921200, Critical, "LDAP Injection Attack", ARGS_ALL, T_LOW, &[")("],
          Op::Rx(r"(?:\)\s*\(\s*[|&!]\s*\(\s*[a-z0-9_-]+\s*[<>~]?=|\*\s*\)\s*\(\s*[a-z0-9_-]+\s*[<>~]?=|\)\s*\(\s*\|?\s*\(?\s*(?:objectclass|uid|cn|mail|password|userpassword|samaccountname)\s*=)")),
        // ---- 930: local file inclusion ----
        r(930100, Critical, "Path Traversal Attack (/../) or (/.../) using encodings", &[Uri, Body], T_RAW_LOW,
          &["%2e", "%u002e", "%c0", "%e0", "%252e", "%2f", "%5c", "%c1", "%u221"],
          Op::Rx(r"(?:(?:\.|%2e|%u002e|%c0%ae|%e0%80%ae|%c0%2e|%252e){2,3}(?:/|\\|%2f|%5c|%u2215|%u2216|%c0%af|%e0%80%af|%c1%9c|%c0%5c|%252f|%255c)+){2}")),
        r(930110, Critical, "Path Traversal Attack (/../) or (/.../)", &[Uri, Args, ArgsNames, Cookies, Headers], T_LOW, &[".."],
          Op::Rx(r"\.{2,3}[\\/]+\.{2,3}(?:[\\/]|$)|[\\/]\.{2,3}[\\/]")),
        r(930120, Critical, "OS File Access Attempt", ARGS_ALL, T_PATH,
          &["etc/passwd", "etc/shadow", "etc/hosts", "etc/group", "etc/issue", "etc/crontab", "etc/sudoers", "etc/motd",
            "proc/self/", "proc/version", "proc/cpuinfo", ".ssh/id_rsa", ".ssh/id_ed25519", ".ssh/authorized_keys", ".bash_history",
            ".htaccess", ".htpasswd", "web.config", "wp-config.php", "boot.ini", "win.ini", "system.ini", "windows/system32",
            "winnt/system32", ".aws/credentials", ".git/config", ".git/head", "/.env", ".docker/config.json", ".kube/config",
            "php.ini", "my.cnf", "httpd.conf", "nginx.conf", "var/log/", "etc/nginx/", "etc/apache2/", "etc/mysql/",
            "localsettings.php", "configuration.php", "applicationhost.config", "system32/config/sam"], Op::Pm),
        r(930130, Critical, "Restricted File Access Attempt", &[Path], T_PATH,
          &["/.git/", "/.svn/", "/.hg/", "/.bzr/", "/.env", "/.htaccess", "/.htpasswd", "/.ds_store", "/.aws/", "/.ssh/",
            "/.bash_history", "/web.config", "/wp-config.php", "/.npmrc", "/.dockerenv", "/.idea/", "/.vscode/",
            "/.git", "/.gitconfig", "/.pgpass", "/.netrc", "/.mysql_history", "/.travis.yml", "/.ftpconfig", "/id_rsa",
            "/etc/passwd", "/etc/shadow", "/proc/self/"], Op::Pm),
        // ---- 931: remote file inclusion ----
        r(931100, Critical, "Possible Remote File Inclusion (RFI) Attack: URL Parameter using IP Address", &[Args], T_LOW, &["://"],
          Op::Rx(r"^\s*(?:file|ftps?|https?|gopher|dict)://(?:[^@/]*@)?(?:\d{1,3}\.){3}\d{1,3}")),
        r(931110, Critical, "Possible Remote File Inclusion (RFI) Attack: Common RFI Vulnerable Parameter Name used w/URL Payload",
          &[QueryString, Body], T_LOW, &["://"],
          Op::Rx(r"(?:include\s*\([^)]*|mosconfig_absolute_path|_conf\[path\]|_server\[document_root\]|gallery_basedir|path\[docroot\]|appserv_root|config\[root_dir\]|phpbb_root_path|base_path|abs_path)=(?:file|ftps?|https?)://")),
        r(931120, Critical, "Possible Remote File Inclusion (RFI) Attack: URL Payload Used w/Trailing Question Mark Character (?)",
          &[Args], T_LOW, &["://"], Op::Rx(r"^\s*(?:file|ftps?|https?)://[^?#]*\?+$")),
        // ---- 932: remote command execution ----
        r(932100, Critical, "Remote Command Execution: Unix Command Injection", ARGS_ALL, T_SHELL, &[";", "|", "&", "\n", "`", "$("],
          Op::Rx(const_format_unix())),
        r(932105, Critical, "Remote Command Execution: Unix Shell Expression Found", ARGS_ALL, T_SHELL, &["$(", "`", "ifs", "$'", "<("],
          Op::Rx(const_format_unix_expr())),
        r(932110, Critical, "Remote Command Execution: Windows Command Injection", ARGS_ALL, T_SHELL,
          &["cmd", "powershell", "pwsh", "net", "ipconfig", "systeminfo", "tasklist", "taskkill", "wmic", "certutil", "bitsadmin",
            "reg", "rundll32", "regsvr32", "mshta", "script", "type", "dir", "%comspec%", "whoami"],
          Op::Rx(r"(?:^|[;&|\n`(]|\$\()\s*(?:cmd(?:\.exe)?\s*/[ckr]|(?:powershell|pwsh)(?:\.exe)?\b|net1?(?:\.exe)?\s+(?:user|localgroup|group|share|view|use|start|stop)\b|ipconfig(?:\.exe)?(?:\s|/|$)|systeminfo|tasklist|taskkill\s|wmic\s|certutil(?:\.exe)?\s+-|bitsadmin\s|reg(?:\.exe)?\s+(?:query|add|delete|save)\s|rundll32|regsvr32|mshta|[cw]script(?:\.exe)?\s|type\s+[a-z]:\\|dir\s+[a-z]:\\|%comspec%|whoami(?:\.exe)?\s*(?:$|/))")),
        r(932120, Critical, "Remote Command Execution: Windows PowerShell Command Found", ARGS_ALL, T_LOW,
          &["invoke-", "iex", "net.webclient", "downloadstring", "downloadfile", "-encodedcommand", "-enc", "start-process",
            "set-executionpolicy", "frombase64string", "-nop", "bypass", "get-childitem", "get-content"],
          Op::Rx(r"(?:invoke-(?:expression|webrequest|command|restmethod|shellcode|mimikatz)\b|\biex\s*[\(\$]|new-object\s+(?:-typename\s+)?(?:system\.)?net\.webclient|\.download(?:string|file)\s*\(|\s-(?:encodedcommand|enc|e)\s+[a-z0-9+/=]{16,}|start-process\s|set-executionpolicy\s|\[(?:system\.)?convert\]::frombase64string|\s-nop\s|-executionpolicy\s+bypass|\bget-(?:childitem|content)\s+[a-z]:)")),
        r(932150, Critical, "Remote Command Execution: Direct Unix Command Execution", ARGS_ALL, T_SHELL, &["bin/"],
          Op::Rx(r"(?:^|[\s;&|`(=])/(?:usr/)?(?:local/)?s?bin/[a-z0-9_.-]+(?:\s|$|[;&|`)])")),
        r(932160, Critical, "Remote Command Execution: Unix Shell Code Found", ARGS_ALL, T_CMD,
          &["/bin/bash", "/bin/sh", "/bin/zsh", "/bin/dash", "/bin/busybox", "/dev/tcp/", "/dev/udp/", "bash -i", "sh -i",
            "nc -e", "ncat -e", "mkfifo /tmp", "chmod +x", "chmod 777", "/etc/init.d/", "rm -rf /", "| bash", "| sh",
            "|bash", "|sh", "curl -s", "wget -q", "python -c", "python3 -c", "perl -e", "ruby -e", "php -r", "0<&196",
            "exec 5<>", "/bin/nc", "telnet "], Op::Pm),
        r(932170, Critical, "Remote Command Execution: Shellshock (CVE-2014-6271)", &[Headers, RequestLine], T_LOW, &["()"],
          Op::Rx(r"^\s*\(\s*\)\s*\{")),
        r(932171, Critical, "Remote Command Execution: Shellshock (CVE-2014-6271)", &[Args, ArgsNames, FilesNames], T_LOW, &["()"],
          Op::Rx(r"^\s*\(\s*\)\s*\{")),
        r(932180, Critical, "Restricted File Upload Attempt", &[FilesNames], T_LOW,
          &[".htaccess", ".htdigest", ".htpasswd", "web.config", ".user.ini", "php.ini", ".bashrc", ".profile", "authorized_keys"],
          Op::Pm),
        // ---- 933: PHP ----
        r(933100, Critical, "PHP Injection Attack: PHP Open Tag Found", ARGS_ALL, T_LOW, &["<?", "[?php"],
          Op::Rx(r"(?:<\?(?:php\b|=|\s)|\[\?php\b)")),
        r(933110, Critical, "PHP Injection Attack: PHP Script File Upload Found", &[FilesNames], T_LOW, &[".ph", ".inc"],
          Op::Rx(r"\.(?:php\d*|phtml|pht|phar|phps|inc)(?:\.|$|\x00)")),
        r(933120, Critical, "PHP Injection Attack: Configuration Directive Found", ARGS_ALL, T_LOW,
          &["allow_url", "auto_prepend", "auto_append", "disable_functions", "open_basedir", "safe_mode", "register_globals", "suhosin"],
          Op::Rx(r"(?:allow_url_(?:include|fopen)|auto_(?:prepend|append)_file|disable_functions|open_basedir|safe_mode|register_globals|suhosin\.[a-z_.]+)\s*=")),
        r(933130, Critical, "PHP Injection Attack: Variables Found", ARGS_ALL, T_LOW, &["$_", "$globals", "$http_"],
          Op::Rx(r"\$(?:_(?:get|post|cookie|request|server|files|env|session)\b|globals\b|http_(?:raw_post_data|(?:get|post|cookie|server|env|session)_vars)\b)")),
        r(933140, Critical, "PHP Injection Attack: I/O Stream Found", ARGS_ALL, T_LOW, &["php://"],
          Op::Rx(r"php://(?:std(?:in|out|err)|input|output|fd|memory|temp|filter)")),
        r(933150, Critical, "PHP Injection Attack: High-Risk PHP Function Name Found", ARGS_ALL, T_LOW,
          &["shell_exec", "passthru", "proc_open", "pcntl_exec", "phpinfo", "base64_decode", "gzinflate", "str_rot13",
            "create_function", "call_user_func", "file_put_contents", "move_uploaded_file", "highlight_file", "show_source",
            "preg_replace", "unserialize", "assert", "system", "exec", "eval", "popen", "include", "require", "readfile",
            "fsockopen", "file_get_contents"],
          Op::Rx(r#"(?:\b(?:shell_exec|passthru|proc_open|pcntl_exec|phpinfo|base64_decode|gzinflate|str_rot13|create_function|call_user_func(?:_array)?|file_put_contents|file_get_contents|move_uploaded_file|highlight_file|show_source|preg_replace|unserialize|fsockopen)\s*\(|\b(?:assert|system|exec|eval|popen|include(?:_once)?|require(?:_once)?|readfile)\(\s*[$'"a-z_(]|\b(?:include|require)(?:_once)?\s+['"$])"#)),
        r(933170, Critical, "PHP Injection Attack: Serialized Object Injection", ARGS_ALL, T_NONE, &["\":"],
          Op::Rx(r#"(?i)(?:^|[;{])[oc]:\d+:"[a-z0-9_\\]+":\d+:\{"#)),
        r(933200, Critical, "PHP Injection Attack: Wrapper scheme detected", ARGS_ALL, T_LOW, &["://"],
          Op::Rx(r"(?:^|[^a-z])(?:zlib|glob|phar|ssh2|rar|ogg|expect|zip|compress\.(?:zlib|bzip2))://|(?:^|[^a-z])data://(?:text|image|application)/")),
        // ---- 934: Node.js, SSRF, prototype pollution ----
        r(934100, Critical, "Node.js Injection Attack", ARGS_ALL, T_LOW,
          &["child_process", "process.", "require", "constructor", "global.", "module."],
          Op::Rx(r#"(?:child_process|require\s*\(\s*['"`](?:child_process|fs|net|vm|os|http)['"`]\s*\)|process\s*\.\s*(?:mainmodule|binding|dlopen|kill|exit)\b|\bprocess\s*\.\s*env\s*\[|this\.constructor\.constructor|\.constructor\s*\(\s*['"`]return|global\s*\.\s*process|module\s*\.\s*require|\beval\s*\(\s*['"`]?require)"#)),
        r(934110, Critical, "Possible Server Side Request Forgery (SSRF) Attack: Cloud provider metadata URL", ARGS_ALL, T_LOW,
          &["169.254.169.254", "metadata.google.internal", "100.100.100.200", "fd00:ec2::254", "169.254.170.2", "metadata.azure",
            "instance-data", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "[::ffff:a9fe:a9fe]",
            "metadata.packet.net", "metadata.oraclecloud"], Op::Pm),
        r(934120, Critical, "Possible Server Side Request Forgery (SSRF) Attack: internal address or unusual scheme in URL", &[Args], T_LOW,
          &["://"],
          Op::Rx(r"^\s*(?:(?:gopher|dict|ldap|tftp|jar|netdoc|file)://|https?://(?:[^@/]*@)?(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|0x7f[0-9a-f.]*|2130706433|017700000001|\[::1?\]|\[0:0:0:0:0:0:0:1\]|\[::ffff:127\.)(?:[:/?#]|$))")),
        r(934130, Critical, "JavaScript Prototype Pollution", &[Args, ArgsNames, Cookies, CookieNames, QueryString], T_LOW,
          &["__proto__", "prototype"], Op::Rx(r"__proto__|constructor\s*(?:\[\s*['\x22]?|\.\s*|\]\s*\[\s*['\x22]?)prototype")),
        // ---- 941: XSS ----
        r(941100, Critical, "XSS Attack Detected via libinjection-style detector", ARGS_ALL_HP, T_XSS,
          &["<", "\"", "'", "`", "script:", "data:"], Op::Xss),
        r(941110, Critical, "XSS Filter - Category 1: Script Tag Vector", ARGS_ALL_HP, T_XSS, &["<script"], Op::Rx(r"<script[\s/>]")),
        r(941120, Critical, "XSS Filter - Category 2: Event Handler Vector", ARGS_ALL_HP, T_XSS, &["on"],
          Op::Rx(r"[\s\x22'`/;]on(?:load|error|click|dblclick|mouse[a-z]+|key[a-z]+|focus(?:in|out)?|blur|change|submit|reset|select|abort|toggle|begin|end|animation[a-z]+|transition[a-z]+|pointer[a-z]+|touch[a-z]+|drag[a-z]*|drop|copy|cut|paste|input|invalid|scroll|wheel|resize|unload|beforeunload|hashchange|message|popstate|storage|play(?:ing)?|pause|ended|canplay[a-z]*|loadstart|loadeddata|progress|show|search|auxclick|contextmenu|readystatechange|pageshow|pagehide|start|finish|bounce)\s*=")),
        r(941130, Critical, "XSS Filter - Category 3: Attribute Vector", ARGS_ALL_HP, T_XSS,
          &["xlink:href", "formaction", "srcdoc", "data:text/html", "data:image/svg", "expression", "-moz-binding", "behavior:", "@import"],
          Op::Rx(r"(?:xlink:href\s*=|formaction\s*=|srcdoc\s*=|data:(?:text/html|image/svg\+xml)|style\s*=[^>]*expression\s*\(|-moz-binding\s*:|behavior\s*:\s*url|@import\s*['\x22u])")),
        r(941140, Critical, "XSS Filter - Category 4: JavaScript URI Vector", ARGS_ALL_HP, T_XSS, &["script"],
          Op::Rx(r"(?:java|vb|live)script\s*:[^\s]*[(=`\[]")),
        r(941160, Critical, "NoScript XSS InjectionChecker: HTML Injection", ARGS_ALL_HP, T_XSS,
          &["<iframe", "<object", "<embed", "<applet", "<meta", "<base", "<frame", "<svg", "<math", "<isindex", "<xml", "<xss",
            "<link", "<style", "<portal"],
          Op::Rx(r"<(?:iframe|object|embed|applet|meta|base|frame|frameset|svg|math|isindex|xml|xss|link|style|portal)[\s/>]")),
        r(941180, Critical, "Node-Validator Deny List Keywords", ARGS_ALL_HP, T_XSS,
          &["document.cookie", "document.write", "document.domain", ".innerhtml", ".outerhtml", "window.location", "-moz-binding",
            "fromcharcode", "top.location", "self.location", "document.location", "location.href="], Op::Pm),
        r(941390, Critical, "Javascript method detected", ARGS_ALL_HP, T_XSS,
          &["eval", "settimeout", "setinterval", "alert", "prompt", "confirm", "function", "atob"],
          Op::Rx(r"\b(?:eval|alert|prompt|confirm|atob)(?:\(|`)|\bset(?:timeout|interval)\s*\(\s*['\x22`]|\bnew\s+function\s*\(")),
        // ---- 942: SQL injection ----
        r(942100, Critical, "SQL Injection Attack Detected via libinjection-style detector", ARGS_ALL_H, T_SQL, &[], Op::Sqli),
        r(942140, Critical, "SQL Injection Attack: Common DB Names Detected", ARGS_ALL_H, T_SQL,
          &["information_schema", "mysql.user", "pg_catalog", "pg_shadow", "pg_user", "sysobjects", "syscolumns", "sys.objects",
            "msysaccessobjects", "msysobjects", "sqlite_master", "all_tables", "user_tables", "dba_users", "sysdatabases",
            "sys.tables", "sysusers", "mysql.db"], Op::Pm),
        r(942160, Critical, "Detects blind sqli tests using sleep() or benchmark()", ARGS_ALL_H, T_SQL,
          &["sleep", "benchmark", "waitfor", "dbms_pipe", "dbms_lock", "randomblob"],
          Op::Rx(r#"(?:\bsleep\s*\(\s*\(?\s*\d+(?:\.\d+)?\s*\)|\bbenchmark\s*\(\s*\d+\s*,|\bpg_sleep\s*\(|\bwaitfor\s+(?:delay|time)\s+['"]|dbms_pipe\.receive_message|dbms_lock\.sleep|\brandomblob\s*\(\s*\d{5,})"#)),
        r(942190, Critical, "Detects MSSQL code execution and information gathering attempts", ARGS_ALL_H, T_SQL,
          &["xp_", "sp_", "exec", "@@version", "@@hostname", "@@datadir", "@@servername"],
          Op::Rx(r"(?:\bexec(?:ute)?\s+(?:master\.+)?(?:dbo\.)?(?:xp_|sp_)[a-z]|\bxp_cmdshell\b|\bsp_(?:oacreate|executesql|addlogin|addsrvrolemember|configure)\b|@@(?:version|hostname|datadir|servername)\b)")),
        r(942220, Critical, "Looking for integer overflow attacks", ARGS_ALL_H, T_SQL,
          &["2147483648", "4294967295", "4294967296", "9223372036854775807", "18446744073709551615", "e-308"],
          Op::Rx(r"^(?:-?(?:2147483648|4294967295|4294967296|9223372036854775807|18446744073709551615)|[\d.]+e-308)$")),
        r(942230, Critical, "Detects conditional SQL injection attempts", ARGS_ALL_H, T_SQL, &["case", "if", "iif"],
          Op::Rx(r"(?:[\s(]case\s+when\s.{1,100}?\bthen\b|\bi?if\s*\(\s*(?:\d|\(?\s*select|ascii|substr|substring|length|user|database|version|mid|ord)[^)]{0,80},)")),
        r(942250, Critical, "Detects MATCH AGAINST, MERGE and EXECUTE IMMEDIATE injections", ARGS_ALL_H, T_SQL,
          &["merge", "immediate", "against"],
          Op::Rx(r#"(?:\bmerge\s+into\b.{0,100}?\busing\b|\bexecute\s+immediate\s+['"]|\bmatch\s*\([^)]+\)\s*against\s*\()"#)),
        r(942270, Critical, "Looking for basic sql injection: common attack string for mysql, oracle and others", ARGS_ALL_H, T_SQL,
          &["union"], Op::Rx(r"\bunion(?:\s+(?:all|distinct))?\s*\(?\s*select\b")),
        r(942280, Critical, "Detects stacked queries: shutdown, waitfor, drop, declare", ARGS_ALL_H, T_SQL, &[";"],
          Op::Rx(r"[;'\x22)]\s*(?:shutdown\b|waitfor\s+delay\b|drop\s+(?:table|database|schema|user)\b|truncate\s+table\b|declare\s+@|alter\s+table\b|insert\s+into\b|delete\s+from\b|update\s+\w+\s+set\b|exec(?:ute)?\s+\w)")),
        r(942290, Critical, "Finds basic MongoDB SQL injection attempts", &[Args, ArgsNames, Cookies, CookieNames, QueryString], T_LOW,
          &["$"], Op::Rx(r"(?:\[\s*\$(?:ne|eq|gt|gte|lt|lte|regex|where|in|nin|exists|or|and|nor|not|expr|function|elemmatch)\s*\]|^\$(?:ne|gt|gte|lt|lte|regex|where|nin|exists|expr|function|elemmatch)$|\$where\s*:)")),
        r(942350, Critical, "Detects MySQL UDF injection and other data/structure manipulation attempts", ARGS_ALL_H, T_SQL,
          &["create", "into", "load_file", "load data"],
          Op::Rx(r#"(?:\bcreate\s+(?:or\s+replace\s+)?(?:function|procedure|trigger)\b.{0,60}\b(?:returns|soname|begin|as)\b|\binto\s+(?:dump|out)file\s*['"]|\bload_file\s*\(|\bload\s+data\s+(?:local\s+)?infile\b)"#)),
        r(942360, Critical, "Detects concatenated basic SQL injection and SQLLFI attempts", ARGS_ALL_H, T_SQL,
          &["alter", "drop", "select", "union", "insert", "update", "delete", "create", "exec", "shutdown", "truncate", "declare", "waitfor"],
          Op::Rx(r#"^[\s\d]*['"`);]+[\s;)]*(?:alter|drop|select|union|insert|update|delete|create|exec|shutdown|truncate|declare|waitfor)\b"#)),
        r(942500, Critical, "MySQL in-line comment detected", ARGS_ALL_H, &[UrlDecodeUni, Lowercase], &["/*!"], Op::Rx(r"/\*!\d*")),
        // ---- 943: session fixation ----
        r(943100, Critical, "Possible Session Fixation Attack: Setting Cookie Values in HTML", ARGS_ALL, T_LOW, &["cookie"],
          Op::Rx(r"(?:document\s*\.\s*cookie\s*=|http-equiv\s*=\s*['\x22]?set-cookie)")),
        check(943110, Critical, "Possible Session Fixation Attack: SessionID Parameter Name with Off-Domain Referer", c_session_offdomain),
        check(943120, Critical, "Possible Session Fixation Attack: SessionID Parameter Name with No Referer", c_session_noreferer),
        // ---- 944: Java ----
        r(944100, Critical, "Remote Command Execution: Suspicious Java class detected", ARGS_ALL, T_LOW,
          &["java.lang.runtime", "java.lang.processbuilder", "runtime.getruntime", "processbuilder"],
          Op::Rx(r"(?:java\.lang\.(?:runtime|processbuilder)|runtime\s*\.\s*getruntime\s*\(|new\s+(?:java\.lang\.)?processbuilder\s*\()")),
        r(944110, Critical, "Remote Command Execution: Java process spawn", ARGS_ALL, T_LOW, &["getruntime", ".exec(", "processbuilder"],
          Op::Rx(r"(?:getruntime\s*\(\s*\)\s*\.\s*exec\s*\(|processbuilder\s*\([^)]*\)\s*\.\s*start\s*\()")),
        r(944120, Critical, "Remote Command Execution: Java serialization", &[Args, ArgsNames, Cookies, CookieNames, Body], T_RAW_LOW,
          &["ro0ab", "aced0005", "\u{ac}\u{ed}"], Op::Rx(r"(?:ro0ab|aced0005|\xc2\xac\xc3\xad\x00\x05)")),
        r(944130, Critical, "Suspicious Java class detected", ARGS_ALL, T_LOW,
          &["java.lang.reflect", "javax.script.scriptenginemanager", "org.apache.commons.collections", "com.sun.org.apache.xalan",
            "@ognl", "#_memberaccess", "ognlcontext", "java.beans.xmldecoder", "classpathxmlapplicationcontext",
            "class.module.classloader", "java.lang.classloader", "javax.naming.initialcontext", "com.sun.rowset.jdbcrowsetimpl",
            "org.codehaus.groovy.runtime", "bsh.interpreter", "java.net.urlclassloader"], Op::Pm),
        r(944150, Critical, "Potential Remote Command Execution: Log4j / Log4shell", &[Args, ArgsNames, Cookies, CookieNames, Headers, Uri],
          T_LOW, &["${"],
          Op::Rx(r"\$\{\s*(?:jndi\s*:|\$\{|(?:lower|upper|env|sys|date|java|base64|main|marker|ctx|bundle|k8s|docker|spring|log4j|web|sd|event|jvmrunargs)\s*:|::-)")),
        // ---- 95x: response data leakage ----
        resp(950130, Error, "Directory Listing", &["index of /", "directory listing for", "[to parent directory]"],
             Op::Rx(r"(?:<title>\s*(?:index of /|directory listing for /)|<h1>\s*(?:index of /|directory listing for /)|\[to parent directory\])")),
        resp(950140, Critical, "CGI source code leakage", &["#!"], Op::Rx(r"^\s*#!\s*/(?:usr/)?(?:local/)?bin/")),
        resp(950160, Error, "Stack trace leakage (Python, Node.js, Ruby, Go)",
             &["traceback (most recent call last)", "at object.<anonymous>", "at module._compile", "node:internal", "goroutine ",
               ".rb:", "(internal/"],
             Op::Rx(r"(?:traceback \(most recent call last\):|at object\.<anonymous> \(|at module\._compile \(|\(node:internal/|\(internal/modules/|goroutine \d+ \[running\]|\.rb:\d+:in `)")),
        resp(951110, Critical, "Microsoft Access SQL Information Leakage",
             &["microsoft access", "jet database engine", "access database engine", "odbc microsoft access"],
             Op::Rx(r"(?:microsoft access (?:\d+ )?driver|jet database engine|access database engine|odbc microsoft access)")),
        resp(951120, Critical, "Oracle SQL Information Leakage", &["ora-", "oracle"],
             Op::Rx(r"(?:\bora-\d{5}:|oracle error|oracle\.jdbc|oracle.{0,20}driver|warning.{0,20}\boci_)")),
        resp(951130, Critical, "DB2 SQL Information Leakage", &["db2", "sqlcode", "cli driver"],
             Op::Rx(r"(?:db2 sql error|\bsqlcode\s*=\s*-\d+|\[ibm\]\[cli driver\]|com\.ibm\.db2)")),
        resp(951220, Critical, "MSSQL SQL Information Leakage",
             &["unclosed quotation mark", "ole db provider for sql server", "[sql server]", "sqlserver jdbc", "sqlclient", "sqlexception",
               "odbc sql server driver"],
             Op::Rx(r"(?:unclosed quotation mark after the character string|ole db provider for sql server|\[(?:microsoft\]\[)?(?:odbc )?sql server(?: driver)?\]|sqlserver jdbc driver|system\.data\.sqlclient\.sqlexception|com\.microsoft\.sqlserver\.jdbc)")),
        resp(951230, Critical, "MySQL SQL Information Leakage",
             &["sql syntax", "mysql_", "mysqli", "com.mysql.jdbc", "mysqlsyntaxerrorexception", "mysql server version"],
             Op::Rx(r"(?:you have an error in your sql syntax|check the manual that corresponds to your mysql server version|warning:\s+mysqli?_|mysqli?_(?:fetch_(?:array|assoc|row)|query|connect|num_rows)\(|com\.mysql\.jdbc|mysqlsyntaxerrorexception)")),
        resp(951240, Critical, "PostgreSQL SQL Information Leakage",
             &["pg_query", "pg_exec", "psqlexception", "postgresql query failed", "syntax error at or near", "org.postgresql", "npgsql"],
             Op::Rx(r"(?:pg_(?:query|exec)\(\)|psqlexception|postgresql query failed|error:\s+syntax error at or near|org\.postgresql\.util|npgsql\.|unterminated quoted string at or near)")),
        resp(951260, Critical, "SQLite SQL Information Leakage", &["sqlite"],
             Op::Rx(r"(?:sqlite3?::|sqlite_error|sqliteexception|system\.data\.sqlite|sqlite3\.operationalerror|near \x22[^\x22]{1,40}\x22: syntax error|sqlite_(?:query|exec)\()")),
        resp(952100, Critical, "Java Source Code Leakage", &["import java."],
             Op::Rx(r"\bimport\s+java\.(?:io|util|lang|net|sql|security)\.")),
        resp(952110, Error, "Java Errors",
             &["exception", ".java:"],
             Op::Rx(r"(?:java\.(?:lang|io|sql|util)\.[a-z]+(?:exception|error)\b|\bat\s+(?:java|javax|jdk|sun|org\.apache|org\.springframework|com\.sun)\.[a-z0-9_.$]+\([a-z0-9_$]+\.java:\d+\)|javax\.servlet\.servletexception|org\.apache\.jasper\.jasperexception)")),
        resp(953100, Error, "PHP Information Leakage",
             &["warning", "fatal error", "parse error", "notice", "phpinfo()", "php version"],
             Op::Rx(r"(?:<b>(?:warning|fatal error|parse error|notice|deprecated)</b>:\s|(?:php )?(?:fatal error|parse error|warning):\s.{0,200}? on line <?b?>?\d+|<title>phpinfo\(\)</title>|>php version \d)")),
        resp(953110, Critical, "PHP source code leakage", &["<?php", "<?="], Op::Rx(r"<\?(?:php\b|=\s*\$)")),
        resp(954100, Critical, "Disclosure of IIS install location", &["inetpub"], Op::Rx(r"[a-z]:\\+inetpub\b")),
        resp(954120, Critical, "IIS Information Leakage",
             &["detailed error", "server error in '/", "verbose error", "asp.net", "system.web"],
             Op::Rx(r"(?:<title>iis \d+\.\d+ detailed error|server error in '/[^']*' application|asp\.net is configured to show verbose error|system\.web\.httpexception|\[httpexception\]: )")),
        resp(955100, Critical, "Web shell detected", &["shell", "wso ", "b374k", "weevely", "r57", "c99"],
             Op::Rx(r"(?:<title>[^<]{0,40}(?:c99shell|r57shell|b374k|wso \d|weevely|sh3ll|web shell by)|>\s*(?:c99shell|r57shell)\s*v?\.?\s*\d)")),
    ]
}

fn const_format_unix() -> &'static str {
    // A shell separator (or substitution) followed by a command, either one that takes
    // arguments followed by something argument-like, or an argument-less one at the end.
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        format!(
            r"(?:^|[;&|\n`]|\$\(|\|\||&&)\s*(?:sudo\s+)?(?:/(?:usr/)?(?:local/)?s?bin/)?(?:{UNIX_CMDS}\s+(?:-|\+|/|\$|\.|~|https?:|[a-z0-9_.-]+\.[a-z]{{2,4}}\b|[<>|&]|\d+\s*(?:$|[;&|`)])|[a-z0-9+_.-]{{1,20}}\s+(?:/|~|\$|\.\.?/))|{UNIX_NOARG}\s*(?:$|[;&|`)#]|-[a-z]))"
        )
    })
}

fn const_format_unix_expr() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        format!(r"(?:\$\(\s*(?:{UNIX_CMDS}|{UNIX_NOARG})\b|(?:^|[^`])`\s*(?:{UNIX_CMDS}|{UNIX_NOARG})(?:\s[^`]*)?`|\$\{{?ifs\}}?|\$'\\x[0-9a-f]{{2}}|<\(\s*(?:{UNIX_CMDS}|{UNIX_NOARG})\b)")
    })
}

// ---- checks (protocol rules) ----

fn header<'a>(c: &CheckCtx<'_, 'a>, name: &str) -> Option<&'a str> {
    c.req.and_then(|r| r.header_value(name))
}

fn c_request_line(c: &CheckCtx<'_, '_>) -> Option<String> {
    let r = c.req?;
    let method_ok = !r.method.is_empty()
        && r.method
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_');
    let path_ok = r.path.starts_with('/')
        || r.path == "*"
        || r.path.starts_with("http://")
        || r.path.starts_with("https://");
    let bad_bytes = r
        .path
        .bytes()
        .chain(r.query.bytes())
        .any(|b| b <= 0x20 || b == 0x7f);
    (!method_ok || !path_ok || bad_bytes).then(|| format!("{} {} {}", r.method, r.path, r.protocol))
}

fn c_content_length(c: &CheckCtx<'_, '_>) -> Option<String> {
    let v = header(c, "content-length")?;
    (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_string())
}

fn is_get_head(c: &CheckCtx<'_, '_>) -> bool {
    c.req.is_some_and(|r| {
        r.method.eq_ignore_ascii_case("GET") || r.method.eq_ignore_ascii_case("HEAD")
    })
}

fn c_get_with_body(c: &CheckCtx<'_, '_>) -> Option<String> {
    if !is_get_head(c) {
        return None;
    }
    let cl = header(c, "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let body = c.req.map(|r| r.body.len()).unwrap_or(0);
    (cl > 0 || body > 0).then(|| format!("Content-Length: {cl}"))
}

fn c_get_with_te(c: &CheckCtx<'_, '_>) -> Option<String> {
    if !is_get_head(c) {
        return None;
    }
    header(c, "transfer-encoding").map(|v| format!("Transfer-Encoding: {v}"))
}

fn c_cl_and_te(c: &CheckCtx<'_, '_>) -> Option<String> {
    let te = header(c, "transfer-encoding")?;
    header(c, "content-length").map(|cl| format!("Content-Length: {cl}, Transfer-Encoding: {te}"))
}

fn c_range(c: &CheckCtx<'_, '_>) -> Option<String> {
    let v = header(c, "range").or_else(|| header(c, "request-range"))?;
    let spec = v.trim().strip_prefix("bytes=")?;
    for part in spec.split(',') {
        let (a, b) = part.trim().split_once('-')?;
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
            if b < a {
                return Some(v.to_string());
            }
        }
    }
    None
}

fn c_missing_host(c: &CheckCtx<'_, '_>) -> Option<String> {
    let r = c.req?;
    (r.host.is_empty() && header(c, "host").is_none()).then(String::new)
}

fn c_empty_host(c: &CheckCtx<'_, '_>) -> Option<String> {
    let h = header(c, "host")?;
    h.trim().is_empty().then(String::new)
}

fn c_empty_accept(c: &CheckCtx<'_, '_>) -> Option<String> {
    let h = header(c, "accept")?;
    h.trim().is_empty().then(String::new)
}

fn c_empty_ua(c: &CheckCtx<'_, '_>) -> Option<String> {
    let h = header(c, "user-agent")?;
    h.trim().is_empty().then(String::new)
}

fn c_body_no_ct(c: &CheckCtx<'_, '_>) -> Option<String> {
    let cl = header(c, "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let body = c.req.map(|r| r.body.len()).unwrap_or(0);
    ((cl > 0 || body > 0) && header(c, "content-type").is_none())
        .then(|| format!("Content-Length: {cl}"))
}

fn c_host_ip(c: &CheckCtx<'_, '_>) -> Option<String> {
    let h = header(c, "host").or(c.req.map(|r| r.host))?;
    let host = h
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .is_ok()
        .then(|| h.to_string())
}

/// CRS's default `tx.allowed_request_content_type`.
const ALLOWED_CT: &[&str] = &[
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/related",
    "text/xml",
    "application/xml",
    "application/soap+xml",
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
];

fn c_content_type_allowed(c: &CheckCtx<'_, '_>) -> Option<String> {
    let ct = c.ex.content_type.as_deref()?;
    if ct.is_empty() {
        return None;
    }
    (!ALLOWED_CT.contains(&ct)).then(|| ct.to_string())
}

fn c_protocol(c: &CheckCtx<'_, '_>) -> Option<String> {
    let p = c.req?.protocol;
    (!matches!(
        p,
        "HTTP/1.0" | "HTTP/1.1" | "HTTP/2" | "HTTP/2.0" | "HTTP/3" | "HTTP/3.0"
    ))
    .then(|| p.to_string())
}

fn c_content_type_format(c: &CheckCtx<'_, '_>) -> Option<String> {
    let v = header(c, "content-type")?;
    let mime = v.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b))
    };
    let ok = match mime.split_once('/') {
        Some((t, s)) => token(t) && token(s),
        None => false,
    };
    (!ok).then(|| v.to_string())
}

fn c_charset(c: &CheckCtx<'_, '_>) -> Option<String> {
    let v = header(c, "content-type")?;
    let cs = v.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })?;
    (!matches!(
        cs.as_str(),
        "utf-8" | "iso-8859-1" | "iso-8859-15" | "windows-1252"
    ))
    .then_some(cs)
}

fn c_body_error(c: &CheckCtx<'_, '_>) -> Option<String> {
    c.ex.body_error.clone()
}

fn c_header_crlf(c: &CheckCtx<'_, '_>) -> Option<String> {
    let r = c.req?;
    r.headers
        .iter()
        .find(|(n, v)| n.contains(['\r', '\n']) || v.contains(['\r', '\n']))
        .map(|(n, _)| format!("REQUEST_HEADERS:{n}"))
}

const SESSION_PARAMS: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "aspsessionid",
    "asp.net_sessionid",
    "aspxauth",
    "cfid",
    "cftoken",
];

fn session_param(c: &CheckCtx<'_, '_>) -> Option<String> {
    c.ex.fields.iter().find_map(|f| {
        (f.kind == ArgsNames
            && SESSION_PARAMS
                .iter()
                .any(|p| f.name.eq_ignore_ascii_case(p)))
        .then(|| f.name.to_string())
    })
}

fn c_session_offdomain(c: &CheckCtx<'_, '_>) -> Option<String> {
    let referer = header(c, "referer")?;
    let name = session_param(c)?;
    let rhost = referer
        .split("://")
        .nth(1)?
        .split(['/', '?', '#'])
        .next()?
        .split(':')
        .next()?
        .to_ascii_lowercase();
    let host = c.req?.host.to_ascii_lowercase();
    let same = rhost == host
        || rhost.ends_with(&format!(".{host}"))
        || host.ends_with(&format!(".{rhost}"));
    (!same).then(|| format!("{name} with Referer {referer}"))
}

fn c_session_noreferer(c: &CheckCtx<'_, '_>) -> Option<String> {
    if header(c, "referer").is_some() {
        return None;
    }
    session_param(c)
}
