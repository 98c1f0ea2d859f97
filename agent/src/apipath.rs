//! Kubernetes API paths parsed into what they address: group, version, namespace, resource,
//! name, subresource and verb (get, list or watch), so the policy decides on resources rather
//! than on path strings.
//!
//! The parser is strict on purpose. The API server decodes and routes a path in ways a string
//! match cannot follow (percent-decoding, the legacy `/watch/` prefix, query booleans that read
//! `watch=yes` as true), so anything that could be read two ways is refused rather than
//! normalised: percent-encoding in the path, `.`/`..` and empty segments, a trailing `/`, `;`,
//! `#` anywhere, `\`, whitespace, control characters, non-ASCII, and upper case in the segments
//! that name resources, groups and versions (the API server is case-sensitive there, so such a
//! path could only be a trick or a mistake).
//!
//! The same grammar also reads declared permission *patterns*, where `*` stands for any one
//! segment ([`shapes`]). A pattern can then parse several ways (`/api/v1/*/*` is a get of any
//! cluster-scoped object, a list in the legacy watch prefix, …); the policy refuses a pattern if
//! any of its readings could reach something sensitive.

use std::borrow::Cow;

/// Why a path is refused before any policy rule looks at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiPathError {
    /// The path does not start with `/` (a scheme, a host or a relative path).
    #[error("the path must be absolute (start with a single '/')")]
    NotAbsolute,
    /// `#` anywhere: a fragment would silently drop whatever the host appends after it.
    #[error("'#' is not allowed anywhere in a path or query")]
    Fragment,
    /// A byte outside printable ASCII (control, whitespace, non-ASCII).
    #[error("byte {0:#04x} is not allowed: use printable ASCII without spaces")]
    BadByte(u8),
    /// `%` in the path part: the API server would decode it and route something else.
    #[error("percent-encoding is not allowed in the path part")]
    PercentEncoded,
    /// `\`, which some stacks read as `/`.
    #[error("'\\' is not allowed")]
    Backslash,
    /// `;` (path parameters, or a query separator some stacks accept).
    #[error("';' is not allowed")]
    Semicolon,
    /// `//` or a trailing `/`.
    #[error("empty path segment (// or a trailing /)")]
    EmptySegment,
    /// `.` or `..` as a segment.
    #[error("'.' and '..' segments are not allowed")]
    DotSegment,
    /// A query escape that is not `%` and two hex digits (the API server would drop the pair).
    #[error("bad percent escape in the query")]
    BadEscape,
    /// A segment that must name a group, version or resource is not a valid one.
    #[error("{what} {value:?} is not a valid {what} (lower-case letters, digits and '-' only)")]
    BadSegment {
        /// `prefix`, `group`, `version`, `resource`, `subresource` or `namespace`.
        what: &'static str,
        /// The segment.
        value: String,
    },
    /// `/api/v1/watch` or `/api/v1/namespaces/x/…` with nothing after the prefix.
    #[error("no resource after the API prefix")]
    NoResource,
    /// Segments after a subresource other than `proxy`.
    #[error("too many segments after the subresource")]
    TooManySegments,
}

/// How the request reads its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// One object (the path names it), or a discovery/non-resource document.
    Get,
    /// A collection.
    List,
    /// A stream: the legacy `/watch/` prefix or a `watch` query parameter.
    Watch,
}

/// What a parsed path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery,
    /// Anything outside `/api` and `/apis`: `/version`, `/openapi/v2`, `/healthz`, … These are
    /// not resources; RBAC guards them as non-resource URLs and the policy goes by the
    /// declaration alone.
    NonResource,
    /// A resource request.
    Resource(Resource<'a>),
}

/// A resource request's tuple. The core group is `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource<'a> {
    /// API group; `""` for the core group under `/api`.
    pub group: &'a str,
    /// API version.
    pub version: &'a str,
    /// Namespace, for namespaced requests.
    pub namespace: Option<&'a str>,
    /// Resource (plural, lower case).
    pub resource: &'a str,
    /// Object name.
    pub name: Option<&'a str>,
    /// Subresource (`status`, `log`, `proxy`, …). The legacy `/proxy/` prefix reads as `proxy`.
    pub subresource: Option<&'a str>,
}

/// A query, percent-decoded, in order (keys may repeat).
pub type Query<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A parsed request path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath<'a> {
    /// What it addresses.
    pub kind: Kind<'a>,
    /// How.
    pub verb: Verb,
    /// The query, percent-decoded, in order (keys may repeat).
    pub query: Query<'a>,
}

impl<'a> ApiPath<'a> {
    /// Parses `path` (with an optional `?query`), refusing anything ambiguous.
    pub fn parse(input: &'a str) -> Result<Self, ApiPathError> {
        if input.contains('#') {
            return Err(ApiPathError::Fragment);
        }
        if let Some(b) = input.bytes().find(|b| !b.is_ascii_graphic()) {
            return Err(ApiPathError::BadByte(b));
        }
        if input.contains('\\') {
            return Err(ApiPathError::Backslash);
        }
        if input.contains(';') {
            return Err(ApiPathError::Semicolon);
        }
        let (path, query) = input.split_once('?').map_or((input, None), |(p, q)| (p, Some(q)));
        let segs = segments(path)?;
        let query = match query {
            Some(q) => parse_query(q)?,
            None => Vec::new(),
        };
        let lits: Vec<Seg<'a>> = segs.into_iter().map(Seg::Lit).collect();
        // A concrete path has no `*` to branch on, so it reads exactly one way.
        let shape = match shapes(&lits).into_iter().next() {
            Some(r) => r?,
            None => return Err(ApiPathError::NoResource),
        };
        let watch_query = query.iter().any(|(k, _)| k.eq_ignore_ascii_case("watch"));
        let lit = |s: Seg<'a>| match s {
            Seg::Lit(v) => v,
            Seg::Any => unreachable!("a concrete path has no wildcard"),
        };
        let (kind, verb) = match shape.kind {
            ShapeKind::Discovery => (Kind::Discovery, Verb::Get),
            ShapeKind::NonResource => (Kind::NonResource, Verb::Get),
            ShapeKind::Resource => {
                let verb = if shape.name.is_some() { Verb::Get } else { Verb::List };
                let r = Resource {
                    group: lit(shape.group),
                    version: lit(shape.version),
                    namespace: shape.namespace.map(lit),
                    resource: lit(shape.resource),
                    name: shape.name.map(lit),
                    subresource: shape.subresource.map(lit),
                };
                (Kind::Resource(r), if shape.watch { Verb::Watch } else { verb })
            }
        };
        let verb = if watch_query { Verb::Watch } else { verb };
        Ok(ApiPath { kind, verb, query })
    }

    /// The resource tuple, if this is a resource request.
    pub fn resource(&self) -> Option<&Resource<'a>> {
        match &self.kind {
            Kind::Resource(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the query sets `key` (compared without case, after decoding).
    pub fn has_query_key(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k.eq_ignore_ascii_case(key))
    }
}

/// The path part's segments, after the checks every path (and pattern) must pass.
fn segments(path: &str) -> Result<Vec<&str>, ApiPathError> {
    let Some(rest) = path.strip_prefix('/') else { return Err(ApiPathError::NotAbsolute) };
    if path.contains('%') {
        return Err(ApiPathError::PercentEncoded);
    }
    if rest.is_empty() {
        // `/` alone addresses nothing a gatherer may read.
        return Err(ApiPathError::EmptySegment);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    for s in &segs {
        match *s {
            "" => return Err(ApiPathError::EmptySegment),
            "." | ".." => return Err(ApiPathError::DotSegment),
            _ => {}
        }
    }
    Ok(segs)
}

fn parse_query(q: &str) -> Result<Query<'_>, ApiPathError> {
    // form_urlencoded passes a bad escape through literally, where Go drops the pair: refuse
    // it so both sides read the same pairs.
    let b = q.as_bytes();
    for (i, _) in q.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !hex(i + 1) || !hex(i + 2) {
            return Err(ApiPathError::BadEscape);
        }
    }
    Ok(form_urlencoded::parse(b).collect())
}

/// One segment of a path, or of a permission pattern (`*` = [`Seg::Any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// This exact segment.
    Lit(&'a str),
    /// Any one segment (`*` in a pattern).
    Any,
}

impl Seg<'_> {
    /// Whether this segment can be `lit`.
    pub fn could_be(self, lit: &str) -> bool {
        match self {
            Seg::Lit(s) => s == lit,
            Seg::Any => true,
        }
    }

    /// Whether this segment can be something other than `lit`.
    fn could_differ(self, lit: &str) -> bool {
        match self {
            Seg::Lit(s) => s != lit,
            Seg::Any => true,
        }
    }
}

/// What a pattern reading (or a concrete path) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeKind {
    /// See [`Kind::Discovery`].
    Discovery,
    /// See [`Kind::NonResource`].
    NonResource,
    /// See [`Kind::Resource`].
    Resource,
}

/// One reading of a path or pattern. For non-resource kinds only `kind` is meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape<'a> {
    /// What it addresses.
    pub kind: ShapeKind,
    /// API group (`Lit("")` for core).
    pub group: Seg<'a>,
    /// API version.
    pub version: Seg<'a>,
    /// Namespace.
    pub namespace: Option<Seg<'a>>,
    /// Resource.
    pub resource: Seg<'a>,
    /// Object name.
    pub name: Option<Seg<'a>>,
    /// Subresource.
    pub subresource: Option<Seg<'a>>,
    /// Under the legacy `/watch/` prefix.
    pub watch: bool,
}

impl<'a> Shape<'a> {
    fn other(kind: ShapeKind) -> Self {
        Shape {
            kind,
            group: Seg::Lit(""),
            version: Seg::Lit(""),
            namespace: None,
            resource: Seg::Lit(""),
            name: None,
            subresource: None,
            watch: false,
        }
    }
}

/// Every way the API server could read `segs`, a `*` standing for any one segment. A concrete
/// path gives exactly one entry (an `Err` if it is malformed); a pattern gives one per reading,
/// keeping only the valid ones when at least one is valid.
pub fn shapes<'a>(segs: &[Seg<'a>]) -> Vec<Result<Shape<'a>, ApiPathError>> {
    let mut out = Vec::new();
    let Some(&s0) = segs.first() else {
        return vec![Err(ApiPathError::EmptySegment)];
    };
    if s0.could_be("api") {
        match segs.len() {
            1 => out.push(Ok(Shape::other(ShapeKind::Discovery))),
            2 => out.push(check(segs[1], "version").map(|_| Shape::other(ShapeKind::Discovery))),
            _ => match check(segs[1], "version") {
                Ok(v) => tail(&segs[2..], Seg::Lit(""), v, &mut out),
                Err(e) => out.push(Err(e)),
            },
        }
    }
    if s0.could_be("apis") {
        let prefix = segs.len().min(3);
        let checked: Result<Vec<Seg<'a>>, _> =
            segs[1..prefix].iter().zip(["group", "version"]).map(|(s, what)| check(*s, what)).collect();
        match checked {
            Err(e) => out.push(Err(e)),
            Ok(_) if segs.len() <= 3 => out.push(Ok(Shape::other(ShapeKind::Discovery))),
            Ok(gv) => tail(&segs[3..], gv[0], gv[1], &mut out),
        }
    }
    if s0.could_differ("api") && s0.could_differ("apis") {
        match s0 {
            // Every non-resource prefix is lower case (`version`, `openapi`, `healthz`, …);
            // `API` or `Apis` could only be a bet on a case-folding server.
            Seg::Lit(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                out.push(Err(ApiPathError::BadSegment { what: "prefix", value: s.to_owned() }));
            }
            _ => out.push(Ok(Shape::other(ShapeKind::NonResource))),
        }
    }
    if out.iter().any(Result::is_ok) {
        out.retain(Result::is_ok);
    }
    out
}

/// After `/api/<v>` or `/apis/<g>/<v>`: the legacy `watch`/`proxy` prefixes, then the body.
fn tail<'a>(rest: &[Seg<'a>], group: Seg<'a>, version: Seg<'a>, out: &mut Vec<Result<Shape<'a>, ApiPathError>>) {
    let first = rest[0];
    if first.could_be("watch") {
        body(&rest[1..], group, version, true, false, out);
    }
    if first.could_be("proxy") {
        body(&rest[1..], group, version, false, true, out);
    }
    if first.could_differ("watch") && first.could_differ("proxy") {
        body(rest, group, version, false, false, out);
    }
}

fn body<'a>(
    rest: &[Seg<'a>],
    group: Seg<'a>,
    version: Seg<'a>,
    watch: bool,
    legacy_proxy: bool,
    out: &mut Vec<Result<Shape<'a>, ApiPathError>>,
) {
    let Some(&first) = rest.first() else {
        out.push(Err(ApiPathError::NoResource));
        return;
    };
    let base = Shape { kind: ShapeKind::Resource, group, version, namespace: None, resource: first, name: None, subresource: None, watch };
    // `namespaces/<ns>/…`: a namespaced request, or the namespace object itself.
    if first.could_be("namespaces") {
        match rest.len() {
            1 | 2 => out.push(object(base, Seg::Lit("namespaces"), &rest[1..], legacy_proxy)),
            _ => {
                let third = rest[2];
                // `namespaces/<ns>/status` and `/finalize` are the namespace's own subresources.
                let own = ["status", "finalize"];
                if rest.len() == 3 {
                    for sub in own.into_iter().filter(|s| third.could_be(s)) {
                        out.push(object(base, Seg::Lit("namespaces"), &[rest[1], Seg::Lit(sub)], legacy_proxy));
                    }
                }
                if rest.len() != 3 || own.iter().all(|s| third.could_differ(s)) {
                    match check(rest[1], "namespace") {
                        Ok(ns) => out.push(object(Shape { namespace: Some(ns), ..base }, third, &rest[3..], legacy_proxy)),
                        Err(e) => out.push(Err(e)),
                    }
                }
            }
        }
    }
    if first.could_differ("namespaces") {
        out.push(object(base, first, &rest[1..], legacy_proxy));
    }
}

/// `<resource>[/<name>[/<subresource>[/<proxied path>…]]]`.
fn object<'a>(base: Shape<'a>, resource: Seg<'a>, rest: &[Seg<'a>], legacy_proxy: bool) -> Result<Shape<'a>, ApiPathError> {
    let resource = check(resource, "resource")?;
    let name = rest.first().copied();
    let mut subresource = match rest.get(1) {
        Some(s) => Some(check(*s, "subresource")?),
        None => None,
    };
    if rest.len() > 2 && !legacy_proxy {
        // Only proxy takes a path after it.
        match subresource {
            Some(s) if s.could_be("proxy") => subresource = Some(Seg::Lit("proxy")),
            _ => return Err(ApiPathError::TooManySegments),
        }
    }
    if legacy_proxy {
        subresource = Some(Seg::Lit("proxy"));
    }
    Ok(Shape { resource, name, subresource, ..base })
}

/// A literal in a position with a grammar must follow it; `*` can be anything.
fn check<'a>(seg: Seg<'a>, what: &'static str) -> Result<Seg<'a>, ApiPathError> {
    let Seg::Lit(s) = seg else { return Ok(seg) };
    let lower = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = match what {
        "version" => s.bytes().all(lower),
        "group" => s.bytes().all(|c| lower(c) || c == b'.' || c == b'-'),
        _ => s.bytes().all(|c| lower(c) || c == b'-'),
    };
    let edges = s.bytes().next().is_some_and(lower) && s.bytes().last().is_some_and(lower);
    if ok && edges {
        Ok(seg)
    } else {
        Err(ApiPathError::BadSegment { what, value: s.to_owned() })
    }
}

/// The readings of a permission pattern such as `/api/v1/namespaces/*/pods` (already valid
/// under the manifest grammar of ABI.md §4). `Err` if no reading is a valid path.
pub fn pattern_shapes(pattern: &str) -> Result<Vec<Shape<'_>>, ApiPathError> {
    let segs = segments(pattern)?;
    let segs: Vec<Seg<'_>> = segs.into_iter().map(|s| if s == "*" { Seg::Any } else { Seg::Lit(s) }).collect();
    shapes(&segs).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(p: &str) -> (Resource<'_>, Verb) {
        let a = ApiPath::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        match a.kind {
            Kind::Resource(r) => (r, a.verb),
            k => panic!("{p}: {k:?}"),
        }
    }

    fn r<'a>(g: &'a str, ns: Option<&'a str>, res: &'a str, name: Option<&'a str>, sub: Option<&'a str>) -> Resource<'a> {
        Resource { group: g, version: "v1", namespace: ns, resource: res, name, subresource: sub }
    }

    #[test]
    fn known_paths() {
        use Verb::*;
        let table: &[(&str, Resource<'_>, Verb)] = &[
            ("/api/v1/nodes", r("", None, "nodes", None, None), List),
            ("/api/v1/nodes?limit=500&continue=abc", r("", None, "nodes", None, None), List),
            ("/api/v1/nodes/master-0", r("", None, "nodes", Some("master-0"), None), Get),
            ("/api/v1/nodes/master-0/proxy", r("", None, "nodes", Some("master-0"), Some("proxy")), Get),
            ("/api/v1/nodes/master-0/proxy/metrics/cadvisor", r("", None, "nodes", Some("master-0"), Some("proxy")), Get),
            ("/api/v1/pods", r("", None, "pods", None, None), List),
            ("/api/v1/secrets", r("", None, "secrets", None, None), List),
            ("/api/v1/namespaces", r("", None, "namespaces", None, None), List),
            ("/api/v1/namespaces/default", r("", None, "namespaces", Some("default"), None), Get),
            ("/api/v1/namespaces/default/status", r("", None, "namespaces", Some("default"), Some("status")), Get),
            ("/api/v1/namespaces/a/pods", r("", Some("a"), "pods", None, None), List),
            ("/api/v1/namespaces/a/secrets/b", r("", Some("a"), "secrets", Some("b"), None), Get),
            ("/api/v1/namespaces/a/pods/p/log", r("", Some("a"), "pods", Some("p"), Some("log")), Get),
            ("/api/v1/namespaces/a/pods/p/exec", r("", Some("a"), "pods", Some("p"), Some("exec")), Get),
            ("/api/v1/namespaces/a/services/https:web:8443/proxy/x", r("", Some("a"), "services", Some("https:web:8443"), Some("proxy")), Get),
            ("/api/v1/namespaces/a/serviceaccounts/sa/token", r("", Some("a"), "serviceaccounts", Some("sa"), Some("token")), Get),
            ("/api/v1/watch/secrets", r("", None, "secrets", None, None), Watch),
            ("/api/v1/watch/namespaces/a/secrets", r("", Some("a"), "secrets", None, None), Watch),
            ("/api/v1/watch/namespaces/a/secrets/b", r("", Some("a"), "secrets", Some("b"), None), Watch),
            ("/api/v1/secrets?watch=true", r("", None, "secrets", None, None), Watch),
            ("/api/v1/pods?WATCH=0", r("", None, "pods", None, None), Watch),
            ("/api/v1/pods?%77atch=yes", r("", None, "pods", None, None), Watch),
            ("/api/v1/proxy/nodes/n/metrics", r("", None, "nodes", Some("n"), Some("proxy")), Get),
            ("/apis/config.openshift.io/v1/clusteroperators", r("config.openshift.io", None, "clusteroperators", None, None), List),
            ("/apis/config.openshift.io/v1/clusterversions/version", r("config.openshift.io", None, "clusterversions", Some("version"), None), Get),
            ("/apis/image.openshift.io/v1/namespaces/a/imagestreams/i/secrets", r("image.openshift.io", Some("a"), "imagestreams", Some("i"), Some("secrets")), Get),
            ("/apis/apps/v1/watch/namespaces/a/deployments", r("apps", Some("a"), "deployments", None, None), Watch),
            ("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x", r("rbac.authorization.k8s.io", None, "clusterroles", Some("system:controller:x"), None), Get),
        ];
        for (path, want, verb) in table {
            assert_eq!(&res(path), &(want.clone(), *verb), "{path}");
        }
    }

    #[test]
    fn discovery_and_non_resource() {
        for p in ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1"] {
            assert_eq!(ApiPath::parse(p).unwrap().kind, Kind::Discovery, "{p}");
        }
        for p in ["/version", "/openapi/v2", "/openapi/v3/apis/apps/v1", "/healthz", "/metrics"] {
            assert_eq!(ApiPath::parse(p).unwrap().kind, Kind::NonResource, "{p}");
        }
    }

    #[test]
    fn refuses_ambiguity() {
        use ApiPathError::*;
        let table: &[(&str, ApiPathError)] = &[
            ("api/v1/nodes", NotAbsolute),
            ("https://x/api/v1/nodes", NotAbsolute),
            ("/api/v1/nodes#", Fragment),
            ("/api/v1/nodes?x=1#", Fragment),
            ("/api/v1/%73ecrets", PercentEncoded),
            ("/api/v1/nodes%2Fx", PercentEncoded),
            ("/api/v1//nodes", EmptySegment),
            ("//evil/api/v1/nodes", EmptySegment),
            ("/api/v1/nodes/", EmptySegment),
            ("/", EmptySegment),
            ("/api/v1/nodes/../secrets", DotSegment),
            ("/api/v1/./secrets", DotSegment),
            ("/api/v1/nodes;x=1", Semicolon),
            ("/api/v1/nodes?a=1;watch=true", Semicolon),
            ("/api/v1\\secrets", Backslash),
            ("/api/v1/no des", BadByte(b' ')),
            ("/api/v1/nodes\n", BadByte(b'\n')),
            ("/api/v1/sécrets", BadByte(0xc3)),
            ("/api/v1/nodes?x=%zz", BadEscape),
            ("/api/v1/Secrets", BadSegment { what: "resource", value: "Secrets".into() }),
            ("/api/V1/secrets", BadSegment { what: "version", value: "V1".into() }),
            ("/apis/Image.openshift.io/v1/imagestreams", BadSegment { what: "group", value: "Image.openshift.io".into() }),
            ("/api/v1/namespaces/A/secrets", BadSegment { what: "namespace", value: "A".into() }),
            ("/API/v1/secrets", BadSegment { what: "prefix", value: "API".into() }),
            ("/api/v1/watch", NoResource),
            ("/api/v1/nodes/n/status/x", TooManySegments),
        ];
        for (p, want) in table {
            assert_eq!(ApiPath::parse(p).as_ref().map_err(Clone::clone).err(), Some(want.clone()), "{p}");
        }
    }

    #[test]
    fn patterns_read_every_way() {
        let readings = pattern_shapes("/api/v1/*/*").unwrap();
        // As res/name, and as the legacy watch and proxy prefixes over a list.
        assert!(readings.iter().any(|s| s.watch && s.resource == Seg::Any && s.name.is_none()));
        assert!(readings.iter().any(|s| !s.watch && s.resource == Seg::Any && s.name == Some(Seg::Any)));
        assert!(readings.iter().any(|s| s.subresource == Some(Seg::Lit("proxy"))));
        let ns = pattern_shapes("/api/v1/namespaces/*/pods").unwrap();
        assert_eq!(ns.len(), 1);
        assert_eq!((ns[0].namespace, ns[0].resource), (Some(Seg::Any), Seg::Lit("pods")));
        let any_first = pattern_shapes("/*/v1/secrets").unwrap();
        assert!(any_first.iter().any(|s| s.kind == ShapeKind::Resource && s.resource == Seg::Lit("secrets")));
        assert!(pattern_shapes("/api/v1/Nodes").is_err());
    }
}
