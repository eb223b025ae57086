//! The reader of rafka's schema files (`protocol/schema/*.schema`).
//!
//! Each file declares messages, one line a field, nesting by two spaces of indentation:
//!
//! ```text
//! message ProduceRequest key=0 kind=request versions=3-11 flexible=9+
//!   TransactionalId string  versions=3+ nullable=3+ default=null
//!   TopicData []TopicProduceData
//!     Name string
//! ```
//!
//! A message line names the message, its API key (`key=`, absent for headers), its `kind`
//! (request, response, header), the `versions` we implement and the versions that are
//! `flexible` (compact encodings and tagged fields), or `none`. A field line is
//! `Name type attributes...`; the type is a primitive (`bool`, `int8`, `int16`, `uint16`,
//! `int32`, `uint32`, `int64`, `float64`, `uuid`, `string`, `bytes`, `records`), a struct name,
//! or `[]` and either of those. A struct type declares its fields on the lines below it, one
//! level deeper, unless it is a shared struct declared once with `struct Name` at the first
//! level. Attributes: `versions=` (default: all of the message's), `nullable=`, `tag=N` with
//! `tagged=`, `default=` (`null`, `''`, a number, `true`/`false`), `ignorable` (a non-default
//! value is dropped, not refused, when encoding a version without the field) and
//! `flexible=none` (the field keeps its classic encoding in flexible versions). Version ranges
//! are `N`, `N-M` or `N+`. `#` starts a comment line.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i16,
    pub hi: i16,
}

impl Range {
    pub fn parse(s: &str, msg: Range) -> Result<Option<Range>, String> {
        if s == "none" {
            return Ok(None);
        }
        let num = |t: &str| {
            t.parse::<i16>()
                .map_err(|_| format!("bad version range `{s}`"))
        };
        let r = if let Some(a) = s.strip_suffix('+') {
            Range {
                lo: num(a)?,
                hi: msg.hi,
            }
        } else if let Some((a, b)) = s.split_once('-') {
            Range {
                lo: num(a)?,
                hi: num(b)?,
            }
        } else {
            let n = num(s)?;
            Range { lo: n, hi: n }
        };
        if r.lo > r.hi {
            return Err(format!("empty version range `{s}`"));
        }
        Ok(Some(r))
    }

    pub fn intersect(&self, o: &Range) -> Option<Range> {
        let lo = self.lo.max(o.lo);
        let hi = self.hi.min(o.hi);
        (lo <= hi).then_some(Range { lo, hi })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(Box<Ty>),
    Struct(String),
}

impl Ty {
    fn parse(s: &str) -> Ty {
        if let Some(inner) = s.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match s {
            "bool" => Ty::Bool,
            "int8" => Ty::Int8,
            "int16" => Ty::Int16,
            "uint16" => Ty::Uint16,
            "int32" => Ty::Int32,
            "uint32" => Ty::Uint32,
            "int64" => Ty::Int64,
            "float64" => Ty::Float64,
            "uuid" => Ty::Uuid,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            other => Ty::Struct(other.to_owned()),
        }
    }

    pub fn struct_name(&self) -> Option<&str> {
        match self {
            Ty::Struct(s) => Some(s),
            Ty::Array(inner) => inner.struct_name(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub versions: Range,
    pub nullable: Option<Range>,
    pub tag: Option<u32>,
    pub tagged: Option<Range>,
    pub classic_only: bool,
    pub default: Option<String>,
    pub ignorable: bool,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct MessageDef {
    pub name: String,
    pub key: Option<i16>,
    pub kind: String,
    pub versions: Range,
    pub flexible: Option<Range>,
    /// The message's own struct first, then every nested or shared struct.
    pub structs: Vec<StructDef>,
}

struct Line<'a> {
    no: usize,
    depth: usize,
    words: Vec<&'a str>,
}

pub fn parse_file(path: &str, text: &str) -> Result<Vec<MessageDef>, String> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        if indent % 2 != 0 {
            return Err(format!("{path}:{}: odd indentation", n + 1));
        }
        lines.push(Line {
            no: n + 1,
            depth: indent / 2,
            words: trimmed.split_whitespace().collect(),
        });
    }
    let mut messages = Vec::new();
    let mut pos = 0;
    while pos < lines.len() {
        let l = &lines[pos];
        let at = |e: String| format!("{path}:{}: {e}", l.no);
        if l.depth != 0 || l.words[0] != "message" || l.words.len() < 2 {
            return Err(at("expected `message Name ...`".into()));
        }
        let mut m = MessageDef {
            name: l.words[1].to_owned(),
            key: None,
            kind: String::new(),
            versions: Range { lo: 0, hi: 0 },
            flexible: None,
            structs: Vec::new(),
        };
        let mut flexible = "none".to_owned();
        for w in &l.words[2..] {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| at(format!("bad attribute `{w}`")))?;
            match k {
                "key" => m.key = Some(v.parse().map_err(|_| at(format!("bad key `{v}`")))?),
                "kind" => m.kind = v.to_owned(),
                "versions" => {
                    m.versions = Range::parse(
                        v,
                        Range {
                            lo: 0,
                            hi: i16::MAX,
                        },
                    )
                    .map_err(at)?
                    .ok_or_else(|| at("no versions".into()))?
                }
                "flexible" => flexible = v.to_owned(),
                _ => return Err(at(format!("unknown attribute `{k}`"))),
            }
        }
        m.flexible = Range::parse(&flexible, m.versions).map_err(at)?;
        pos += 1;
        let own = StructDef {
            name: m.name.clone(),
            fields: Vec::new(),
        };
        m.structs.push(own);
        let fields = parse_fields(path, &lines, &mut pos, 1, &mut m)?;
        m.structs[0].fields = fields;
        check(&m).map_err(|e| format!("{path}: {}: {e}", m.name))?;
        messages.push(m);
    }
    Ok(messages)
}

fn parse_fields(
    path: &str,
    lines: &[Line],
    pos: &mut usize,
    depth: usize,
    m: &mut MessageDef,
) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    while *pos < lines.len() && lines[*pos].depth >= depth {
        let l = &lines[*pos];
        let at = |e: String| format!("{path}:{}: {e}", l.no);
        if l.depth > depth {
            return Err(at("unexpected indentation".into()));
        }
        if l.words[0] == "struct" {
            if depth != 1 || l.words.len() != 2 {
                return Err(at("`struct Name` belongs at the first level".into()));
            }
            let name = l.words[1].to_owned();
            *pos += 1;
            let fs = parse_fields(path, lines, pos, depth + 1, m)?;
            m.structs.push(StructDef { name, fields: fs });
            continue;
        }
        if l.words.len() < 2 {
            return Err(at("expected `Name type ...`".into()));
        }
        let mut f = Field {
            name: l.words[0].to_owned(),
            ty: Ty::parse(l.words[1]),
            versions: m.versions,
            nullable: None,
            tag: None,
            tagged: None,
            classic_only: false,
            default: None,
            ignorable: false,
        };
        for w in &l.words[2..] {
            if *w == "ignorable" {
                f.ignorable = true;
                continue;
            }
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| at(format!("bad attribute `{w}`")))?;
            let range =
                || -> Result<Option<Range>, String> { Range::parse(v, m.versions).map_err(&at) };
            match k {
                "versions" => f.versions = range()?.ok_or_else(|| at("no versions".into()))?,
                "nullable" => f.nullable = range()?,
                "tagged" => f.tagged = range()?,
                "tag" => f.tag = Some(v.parse().map_err(|_| at(format!("bad tag `{v}`")))?),
                "flexible" if v == "none" => f.classic_only = true,
                "default" => f.default = Some(v.to_owned()),
                _ => return Err(at(format!("unknown attribute `{w}`"))),
            }
        }
        if f.tag.is_some() != f.tagged.is_some() {
            return Err(at("`tag` and `tagged` go together".into()));
        }
        *pos += 1;
        let has_children = *pos < lines.len() && lines[*pos].depth > depth;
        if has_children {
            let Some(sname) = f.ty.struct_name().map(str::to_owned) else {
                return Err(at("only a struct type has fields below it".into()));
            };
            let fs = parse_fields(path, lines, pos, depth + 1, m)?;
            m.structs.push(StructDef {
                name: sname,
                fields: fs,
            });
        }
        fields.push(f);
    }
    Ok(fields)
}

fn check(m: &MessageDef) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for s in &m.structs {
        if !names.insert(s.name.as_str()) {
            return Err(format!("struct {} declared twice", s.name));
        }
        let mut tags = std::collections::HashSet::new();
        for f in &s.fields {
            if let Some(name) = f.ty.struct_name() {
                if !m.structs.iter().any(|s| s.name == name) {
                    return Err(format!("{}.{}: unknown struct {name}", s.name, f.name));
                }
            }
            if let Some(t) = f.tag {
                if !tags.insert(t) {
                    return Err(format!("{}: tag {t} used twice", s.name));
                }
                let tagged = f.tagged.expect("checked with tag");
                let flex = m.flexible.and_then(|fl| fl.intersect(&tagged));
                if flex != Some(tagged) {
                    return Err(format!(
                        "{}.{}: tagged outside flexible versions",
                        s.name, f.name
                    ));
                }
            }
        }
    }
    Ok(())
}
