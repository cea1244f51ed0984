#!/usr/bin/env bash
# scripts/update-crs.sh TAG | --from TARBALL_OR_DIR [--label TEXT]: replaces the vendored OWASP
# Core Rule Set under crs/ with a CRS release, then checks that the SecLang compiler still
# compiles it (cargo test --test crs_compile).
#
#   scripts/update-crs.sh v4.29.0
#       downloads https://github.com/coreruleset/coreruleset/archive/refs/tags/v4.29.0.tar.gz
#   scripts/update-crs.sh --from ~/Downloads/coreruleset-4.29.0.tar.gz
#   scripts/update-crs.sh --from /path/to/coreruleset --label "commit 2cbd1d0 (v4.28.0-14-g2cbd1d019)"
#       a local release tarball, or a directory with the release layout (rules/, LICENSE,
#       crs-setup.conf.example); --label says which version it is in crs/PROVENANCE.md (by
#       default the tag, or the directory's own PROVENANCE.md is quoted).
#
# Copies rules/*.conf (the .example files too: they document the exclusion mechanism),
# rules/*.data, crs-setup.conf.example and LICENSE; files of the old release that the new one
# no longer has are removed. Rewrites the file lists of src/waf/seclang/vendored.rs (which embeds
# them) and crs/PROVENANCE.md. A release that does not compile fails the test with each error's
# file, line and rule id: fix the compiler or hold the update back. Review with `git diff crs/`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

tag='' from='' label=''
while (($#)); do
    case $1 in
    --from)
        (($# >= 2)) || usage
        from=$2
        shift 2
        ;;
    --label)
        (($# >= 2)) || usage
        label=$2
        shift 2
        ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        [[ -z $tag ]] || usage
        tag=$1
        shift
        ;;
    esac
done
[[ -n $tag || -n $from ]] || usage
[[ -z $tag || -z $from ]] || die "give a tag or --from, not both"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The release as a directory: $src.
sha=''
if [[ -n $tag ]]; then
    [[ $tag =~ ^[A-Za-z0-9._-]+$ ]] || die "not a tag name: $tag"
    url="https://github.com/coreruleset/coreruleset/archive/refs/tags/$tag.tar.gz"
    log "downloading $url"
    curl -fsSL --retry 2 -o "$work/crs.tar.gz" "$url" || die "could not download $url"
    from="$work/crs.tar.gz"
    origin="$url"
else
    origin="$from"
fi
if [[ -f $from ]]; then
    sha=$(sha256sum "$from" | cut -d' ' -f1)
    mkdir "$work/x"
    tar -xzf "$from" -C "$work/x" || die "$from is not a .tar.gz"
    # A release tarball holds one directory, coreruleset-<version>/.
    mapfile -t tops < <(find "$work/x" -mindepth 1 -maxdepth 1)
    ((${#tops[@]} == 1)) && [[ -d ${tops[0]} ]] || die "$from: expected one top-level directory"
    src=${tops[0]}
elif [[ -d $from ]]; then
    src=$from
else
    die "no such file or directory: $from"
fi
for need in rules LICENSE crs-setup.conf.example; do
    [[ -e $src/$need ]] || die "$src has no $need: not a CRS release"
done
compgen -G "$src/rules/*.conf" >/dev/null || die "$src/rules has no .conf files"

# Replace crs/ (only the files this script manages).
mkdir -p crs/rules
rm -f crs/rules/*.conf crs/rules/*.conf.example crs/rules/*.data
cp "$src"/rules/*.conf crs/rules/
if compgen -G "$src/rules/*.conf.example" >/dev/null; then
    cp "$src"/rules/*.conf.example crs/rules/
fi
if compgen -G "$src/rules/*.data" >/dev/null; then
    cp "$src"/rules/*.data crs/rules/
fi
cp "$src/LICENSE" "$src/crs-setup.conf.example" crs/

# The embedded file lists, in ModSecurity's load order (`Include rules/*.conf`: by name).
list() { # $1: glob suffix
    (cd crs/rules && LC_ALL=C ls -1 -- *"$1") | sed 's/.*/    "&",/'
}
splice() { # $1: BEGIN/END marker word, $2: file with the new lines
    awk -v begin="// BEGIN $1" -v end="// END $1" -v repl="$2" '
        index($0, begin) { print; while ((getline line < repl) > 0) print line; skip = 1; next }
        index($0, end) { skip = 0 }
        !skip { print }
    ' src/waf/seclang/vendored.rs >"$work/vendored.rs"
    mv "$work/vendored.rs" src/waf/seclang/vendored.rs
}
list .conf >"$work/rules.txt"
list .data >"$work/data.txt"
splice "rule files" "$work/rules.txt"
splice "data files" "$work/data.txt"

# crs/PROVENANCE.md
version=$(sed -n 's/^SecComponentSignature "\(.*\)"/\1/p' crs/rules/*.conf | head -n1)
{
    echo "# OWASP Core Rule Set: where these files come from"
    echo
    echo "- Source: $origin${tag:+ (tag \`$tag\`)}${label:+, $label}."
    [[ -z $sha ]] || echo "- SHA-256 of the tarball: \`$sha\`."
    echo "- Component signature in the rules: \`${version:-none}\`."
    echo "- Copied on $(date -u +%Y-%m-%d) by \`scripts/update-crs.sh\`, unchanged: \`rules/*.conf\`,"
    echo "  \`rules/*.conf.example\`, \`rules/*.data\`, \`crs-setup.conf.example\`, \`LICENSE\`."
    echo "- License: Apache License 2.0, see \`LICENSE\` (the CRS project's, unchanged)."
    echo "- Compiled by \`src/waf/seclang\` (see \`crs/README.md\`); checked by"
    echo "  \`cargo test --test crs_compile\`."
    if [[ -z $tag && -f $src/PROVENANCE.md ]]; then
        echo
        echo "The source directory's own provenance note, quoted:"
        echo
        sed 's/^/> /; s/ *$//' "$src/PROVENANCE.md"
    fi
} >crs/PROVENANCE.md

log "crs/ updated from $origin (${version:-no component signature}); compiling it"
cargo test --test crs_compile ||
    die "the new rule set does not compile (errors above); undo with: git checkout -- crs/ src/waf/seclang/vendored.rs && git clean -f crs/"
log "done: review with git diff --stat crs/ src/waf/seclang/vendored.rs"
