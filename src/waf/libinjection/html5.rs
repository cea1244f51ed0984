//! libinjection's HTML5 tokenizer (`libinjection_html5.c`, libinjection 4.0.0): a reduced HTML5
//! tokenizer state machine that starts in the data state or inside an attribute value.
//!
//! The C states call each other directly (tail calls), which recurses once per '/' in
//! "<a/////…"; here a state returns the next state to run instead, so the stack stays flat.

/// `enum html5_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    DataText,
    TagNameOpen,
    TagNameClose,
    TagNameSelfClose,
    TagClose,
    AttrName,
    AttrValue,
    TagComment,
    Doctype,
}

/// `enum html5_flags`: where in a document the input is pretended to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    Data,
    ValueNoQuote,
    ValueSingleQuote,
    ValueDoubleQuote,
    ValueBackQuote,
}

/// The `h5_state_*` functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Eof,
    Data,
    TagOpen,
    TagName,
    TagNameClose,
    EndTagOpen,
    SelfClosingStartTag,
    BeforeAttributeName,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValueQuote(u8),
    AttributeValueNoQuote,
    AfterAttributeValueQuoted,
    BogusComment,
    BogusComment2,
    MarkupDeclarationOpen,
    Comment,
    Cdata,
    Doctype,
}

/// What a state function does: return a result, or tail-call another state function.
enum Flow {
    Done(bool),
    Call(State),
}

/// `h5_is_white`: `strchr(" \t\n\v\f\r", ch)`, which also finds NUL (the terminator).
fn is_white(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0)
}

fn find(h: &[u8], from: usize, c: u8) -> Option<usize> {
    h.get(from..)?
        .iter()
        .position(|&x| x == c)
        .map(|i| from + i)
}

/// `h5_state_t`: the tokenizer over one input; the current token is `start..start + len`.
pub(crate) struct Html5<'a> {
    s: &'a [u8],
    pos: usize,
    is_close: bool,
    state: State,
    pub(crate) token_start: usize,
    pub(crate) token_len: usize,
    pub(crate) token_type: TokenType,
}

impl<'a> Html5<'a> {
    /// `libinjection_h5_init`.
    pub(crate) fn new(s: &'a [u8], start: Start) -> Self {
        let state = match start {
            Start::Data => State::Data,
            Start::ValueNoQuote => State::BeforeAttributeName,
            Start::ValueSingleQuote => State::AttributeValueQuote(b'\''),
            Start::ValueDoubleQuote => State::AttributeValueQuote(b'"'),
            Start::ValueBackQuote => State::AttributeValueQuote(b'`'),
        };
        Html5 {
            s,
            pos: 0,
            is_close: false,
            state,
            token_start: 0,
            token_len: 0,
            token_type: TokenType::DataText,
        }
    }

    /// The current token's bytes.
    pub(crate) fn token(&self) -> &'a [u8] {
        let end = self.token_start.saturating_add(self.token_len);
        self.s.get(self.token_start..end).unwrap_or(&[])
    }

    /// `libinjection_h5_next`: reads the next token; false at the end.
    pub(crate) fn next(&mut self) -> bool {
        let mut state = self.state;
        loop {
            match self.step(state) {
                Flow::Done(more) => return more,
                Flow::Call(next) => state = next,
            }
        }
    }

    fn len(&self) -> usize {
        self.s.len()
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn set_token(&mut self, ty: TokenType, start: usize, len: usize) {
        self.token_type = ty;
        self.token_start = start;
        self.token_len = len;
    }

    /// The token from `pos` to the end of the input.
    fn token_to_end(&mut self, ty: TokenType) {
        self.set_token(ty, self.pos, self.len().saturating_sub(self.pos));
    }

    /// `h5_skip_white`: the next non-white byte, or None at the end. C returns the byte as a
    /// (signed) `char`, so 0xFF is -1, CHAR_EOF, and ends the input too.
    fn skip_white(&mut self) -> Option<u8> {
        while self.pos < self.len() {
            match self.at(self.pos) {
                0x00 | 0x20 | 0x09 | 0x0a | 0x0b | 0x0c | 0x0d => self.pos += 1,
                0xff => return None,
                ch => return Some(ch),
            }
        }
        None
    }

    fn step(&mut self, state: State) -> Flow {
        match state {
            State::Eof => Flow::Done(false),
            State::Data => self.data(),
            State::TagOpen => self.tag_open(),
            State::TagName => self.tag_name(),
            State::TagNameClose => self.tag_name_close(),
            State::EndTagOpen => self.end_tag_open(),
            State::SelfClosingStartTag => self.self_closing_start_tag(),
            State::BeforeAttributeName => self.before_attribute_name(),
            State::AttributeName => self.attribute_name(),
            State::AfterAttributeName => self.after_attribute_name(),
            State::BeforeAttributeValue => self.before_attribute_value(),
            State::AttributeValueQuote(q) => self.attribute_value_quote(q),
            State::AttributeValueNoQuote => self.attribute_value_no_quote(),
            State::AfterAttributeValueQuoted => self.after_attribute_value_quoted(),
            State::BogusComment => self.bogus_comment(),
            State::BogusComment2 => self.bogus_comment2(),
            State::MarkupDeclarationOpen => self.markup_declaration_open(),
            State::Comment => self.comment(),
            State::Cdata => self.cdata(),
            State::Doctype => self.doctype(),
        }
    }

    fn data(&mut self) -> Flow {
        match find(self.s, self.pos, b'<') {
            None => {
                self.token_to_end(TokenType::DataText);
                self.state = State::Eof;
                Flow::Done(self.token_len != 0)
            }
            Some(idx) => {
                self.set_token(TokenType::DataText, self.pos, idx - self.pos);
                self.pos = idx + 1;
                self.state = State::TagOpen;
                if self.token_len == 0 {
                    Flow::Call(State::TagOpen)
                } else {
                    Flow::Done(true)
                }
            }
        }
    }

    /// 12.2.4.8
    fn tag_open(&mut self) -> Flow {
        if self.pos >= self.len() {
            return Flow::Done(false);
        }
        match self.at(self.pos) {
            b'!' => {
                self.pos += 1;
                Flow::Call(State::MarkupDeclarationOpen)
            }
            b'/' => {
                self.pos += 1;
                self.is_close = true;
                Flow::Call(State::EndTagOpen)
            }
            b'?' => {
                self.pos += 1;
                Flow::Call(State::BogusComment)
            }
            // not in the spec: IE <= 9 and Safari < 4.0.3 comments
            b'%' => {
                self.pos += 1;
                Flow::Call(State::BogusComment2)
            }
            // NUL: IE ignores it in tag names
            c if c.is_ascii_alphabetic() || c == 0 => Flow::Call(State::TagName),
            _ => {
                if self.pos == 0 {
                    return Flow::Call(State::Data);
                }
                self.set_token(TokenType::DataText, self.pos - 1, 1);
                self.state = State::Data;
                Flow::Done(true)
            }
        }
    }

    /// 12.2.4.9
    fn end_tag_open(&mut self) -> Flow {
        if self.pos >= self.len() {
            return Flow::Done(false);
        }
        match self.at(self.pos) {
            b'>' => Flow::Call(State::Data),
            c if c.is_ascii_alphabetic() => Flow::Call(State::TagName),
            _ => {
                self.is_close = false;
                Flow::Call(State::BogusComment)
            }
        }
    }

    fn tag_name_close(&mut self) -> Flow {
        self.is_close = false;
        self.set_token(TokenType::TagNameClose, self.pos, 1);
        self.pos += 1;
        self.state = if self.pos < self.len() {
            State::Data
        } else {
            State::Eof
        };
        Flow::Done(true)
    }

    /// 12.2.4.10
    fn tag_name(&mut self) -> Flow {
        let mut p = self.pos;
        while p < self.len() {
            let ch = self.at(p);
            if ch == 0 {
                // old browsers allow and ignore NULs in tag names
                p += 1;
            } else if is_white(ch) {
                self.set_token(TokenType::TagNameOpen, self.pos, p - self.pos);
                self.pos = p + 1;
                self.state = State::BeforeAttributeName;
                return Flow::Done(true);
            } else if ch == b'/' {
                self.set_token(TokenType::TagNameOpen, self.pos, p - self.pos);
                self.pos = p + 1;
                self.state = State::SelfClosingStartTag;
                return Flow::Done(true);
            } else if ch == b'>' {
                self.token_start = self.pos;
                self.token_len = p - self.pos;
                if self.is_close {
                    self.pos = p + 1;
                    self.is_close = false;
                    self.token_type = TokenType::TagClose;
                    self.state = State::Data;
                } else {
                    self.pos = p;
                    self.token_type = TokenType::TagNameOpen;
                    self.state = State::TagNameClose;
                }
                return Flow::Done(true);
            } else {
                p += 1;
            }
        }
        self.token_to_end(TokenType::TagNameOpen);
        self.state = State::Eof;
        Flow::Done(true)
    }

    /// 12.2.4.34
    fn before_attribute_name(&mut self) -> Flow {
        match self.skip_white() {
            None => Flow::Done(false),
            Some(b'/') => {
                self.pos += 1;
                Flow::Call(State::SelfClosingStartTag)
            }
            Some(b'>') => {
                self.state = State::Data;
                self.set_token(TokenType::TagNameClose, self.pos, 1);
                self.pos += 1;
                Flow::Done(true)
            }
            Some(_) => Flow::Call(State::AttributeName),
        }
    }

    fn attribute_name(&mut self) -> Flow {
        let mut p = self.pos + 1;
        while p < self.len() {
            let ch = self.at(p);
            let next = if is_white(ch) {
                Some((State::AfterAttributeName, p + 1))
            } else if ch == b'/' {
                Some((State::SelfClosingStartTag, p + 1))
            } else if ch == b'=' {
                Some((State::BeforeAttributeValue, p + 1))
            } else if ch == b'>' {
                Some((State::TagNameClose, p))
            } else {
                None
            };
            if let Some((state, pos)) = next {
                self.set_token(TokenType::AttrName, self.pos, p - self.pos);
                self.state = state;
                self.pos = pos;
                return Flow::Done(true);
            }
            p += 1;
        }
        self.token_to_end(TokenType::AttrName);
        self.state = State::Eof;
        self.pos = self.len();
        Flow::Done(true)
    }

    /// 12.2.4.36
    fn after_attribute_name(&mut self) -> Flow {
        match self.skip_white() {
            None => Flow::Done(false),
            Some(b'/') => {
                self.pos += 1;
                Flow::Call(State::SelfClosingStartTag)
            }
            Some(b'=') => {
                self.pos += 1;
                Flow::Call(State::BeforeAttributeValue)
            }
            Some(b'>') => Flow::Call(State::TagNameClose),
            Some(_) => Flow::Call(State::AttributeName),
        }
    }

    /// 12.2.4.37
    fn before_attribute_value(&mut self) -> Flow {
        match self.skip_white() {
            None => {
                self.state = State::Eof;
                Flow::Done(false)
            }
            // '`' is IE only
            Some(q @ (b'"' | b'\'' | b'`')) => Flow::Call(State::AttributeValueQuote(q)),
            Some(_) => Flow::Call(State::AttributeValueNoQuote),
        }
    }

    fn attribute_value_quote(&mut self, q: u8) -> Flow {
        // Skip the opening quote, unless the input starts inside the value (pos 0): given
        // '><foo the attribute value is empty.
        if self.pos > 0 {
            self.pos += 1;
        }
        match find(self.s, self.pos, q) {
            None => {
                self.token_to_end(TokenType::AttrValue);
                self.state = State::Eof;
            }
            Some(idx) => {
                self.set_token(TokenType::AttrValue, self.pos, idx - self.pos);
                self.state = State::AfterAttributeValueQuoted;
                self.pos = idx + 1;
            }
        }
        Flow::Done(true)
    }

    fn attribute_value_no_quote(&mut self) -> Flow {
        let mut p = self.pos;
        while p < self.len() {
            let ch = self.at(p);
            if is_white(ch) {
                self.set_token(TokenType::AttrValue, self.pos, p - self.pos);
                self.pos = p + 1;
                self.state = State::BeforeAttributeName;
                return Flow::Done(true);
            } else if ch == b'>' {
                self.set_token(TokenType::AttrValue, self.pos, p - self.pos);
                self.pos = p;
                self.state = State::TagNameClose;
                return Flow::Done(true);
            }
            p += 1;
        }
        self.state = State::Eof;
        self.token_to_end(TokenType::AttrValue);
        Flow::Done(true)
    }

    /// 12.2.4.41
    fn after_attribute_value_quoted(&mut self) -> Flow {
        if self.pos >= self.len() {
            return Flow::Done(false);
        }
        match self.at(self.pos) {
            c if is_white(c) => {
                self.pos += 1;
                Flow::Call(State::BeforeAttributeName)
            }
            b'/' => {
                self.pos += 1;
                Flow::Call(State::SelfClosingStartTag)
            }
            b'>' => {
                self.set_token(TokenType::TagNameClose, self.pos, 1);
                self.pos += 1;
                self.state = State::Data;
                Flow::Done(true)
            }
            _ => Flow::Call(State::BeforeAttributeName),
        }
    }

    /// 12.2.4.43
    fn self_closing_start_tag(&mut self) -> Flow {
        if self.pos >= self.len() {
            return Flow::Done(false);
        }
        if self.at(self.pos) != b'>' {
            return Flow::Call(State::BeforeAttributeName);
        }
        if self.pos == 0 {
            // RESULT_ERROR in the C; unreachable (a '/' was read before).
            return Flow::Done(false);
        }
        self.set_token(TokenType::TagNameSelfClose, self.pos - 1, 2);
        self.state = State::Data;
        self.pos += 1;
        Flow::Done(true)
    }

    /// 12.2.4.44
    fn bogus_comment(&mut self) -> Flow {
        match find(self.s, self.pos, b'>') {
            None => {
                self.token_to_end(TokenType::TagComment);
                self.pos = self.len();
                self.state = State::Eof;
            }
            Some(idx) => {
                self.set_token(TokenType::TagComment, self.pos, idx - self.pos);
                self.pos = idx + 1;
                self.state = State::Data;
            }
        }
        Flow::Done(true)
    }

    /// 12.2.4.44, IE's <% … %>
    fn bogus_comment2(&mut self) -> Flow {
        let mut p = self.pos;
        loop {
            match find(self.s, p, b'%') {
                Some(idx) if idx + 1 < self.len() => {
                    if self.at(idx + 1) != b'>' {
                        p = idx + 1;
                        continue;
                    }
                    self.set_token(TokenType::TagComment, self.pos, idx - self.pos);
                    self.pos = idx + 2;
                    self.state = State::Data;
                    return Flow::Done(true);
                }
                _ => {
                    self.token_to_end(TokenType::TagComment);
                    self.pos = self.len();
                    self.state = State::Eof;
                    return Flow::Done(true);
                }
            }
        }
    }

    /// 8.2.4.45
    fn markup_declaration_open(&mut self) -> Flow {
        let rest = self.s.get(self.pos..).unwrap_or(&[]);
        if rest
            .get(..7)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"DOCTYPE"))
        {
            Flow::Call(State::Doctype)
        } else if rest.starts_with(b"[CDATA[") {
            self.pos += 7;
            Flow::Call(State::Cdata)
        } else if rest.starts_with(b"--") {
            self.pos += 2;
            Flow::Call(State::Comment)
        } else {
            Flow::Call(State::BogusComment)
        }
    }

    fn comment_to_end(&mut self) -> Flow {
        self.state = State::Eof;
        self.token_to_end(TokenType::TagComment);
        Flow::Done(true)
    }

    /// 12.2.4.48–51: a comment ends at EOF, "-->" or "-!>" (NULs after the first '-' ignored).
    fn comment(&mut self) -> Flow {
        let len = self.len();
        let mut p = self.pos;
        loop {
            let idx = match find(self.s, p, b'-') {
                Some(idx) if idx + 3 <= len => idx,
                _ => return self.comment_to_end(),
            };
            let mut offset = 1;
            while idx + offset < len && self.at(idx + offset) == 0 {
                offset += 1;
            }
            if idx + offset == len {
                return self.comment_to_end();
            }
            if !matches!(self.at(idx + offset), b'-' | b'!') {
                p = idx + 1;
                continue;
            }
            offset += 1;
            if idx + offset == len {
                return self.comment_to_end();
            }
            if self.at(idx + offset) != b'>' {
                p = idx + 1;
                continue;
            }
            offset += 1;
            self.set_token(TokenType::TagComment, self.pos, idx - self.pos);
            self.pos = idx + offset;
            self.state = State::Data;
            return Flow::Done(true);
        }
    }

    fn cdata(&mut self) -> Flow {
        let len = self.len();
        let mut p = self.pos;
        loop {
            match find(self.s, p, b']') {
                Some(idx) if idx + 3 <= len => {
                    if self.at(idx + 1) == b']' && self.at(idx + 2) == b'>' {
                        self.state = State::Data;
                        self.set_token(TokenType::DataText, self.pos, idx - self.pos);
                        self.pos = idx + 3;
                        return Flow::Done(true);
                    }
                    p = idx + 1;
                }
                _ => {
                    self.state = State::Eof;
                    self.token_to_end(TokenType::DataText);
                    return Flow::Done(true);
                }
            }
        }
    }

    /// 8.2.4.52
    fn doctype(&mut self) -> Flow {
        self.token_start = self.pos;
        self.token_type = TokenType::Doctype;
        match find(self.s, self.pos, b'>') {
            None => {
                self.state = State::Eof;
                self.token_len = self.len().saturating_sub(self.pos);
            }
            Some(idx) => {
                self.state = State::Data;
                self.token_len = idx - self.pos;
                self.pos = idx + 1;
            }
        }
        Flow::Done(true)
    }
}
