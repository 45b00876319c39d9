//! Table-driven tests of the router: matching, priority, 404/405 and pattern checks.

use http::{Method, StatusCode};

use super::*;

const GET: Method = Method::GET;
const HEAD: Method = Method::HEAD;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const DELETE: Method = Method::DELETE;
const PATCH: Method = Method::PATCH;
const OPTIONS: Method = Method::OPTIONS;

/// What one lookup should give.
#[derive(Debug)]
enum Want {
    /// The handler labelled `"METHOD pattern"`, with these params in order.
    Hit(&'static str, &'static [(&'static str, &'static str)]),
    /// 404.
    NotFound,
    /// 405 with this exact `Allow` value.
    NotAllowed(&'static str),
}

use Want::{Hit, NotAllowed, NotFound};

/// A router whose handlers are labelled `"METHOD pattern"`.
fn router(routes: &[(Method, &str)]) -> Router<String> {
    let mut router = Router::new();
    for (method, pattern) in routes {
        router.route(method.clone(), pattern, format!("{method} {pattern}"));
    }
    router
}

/// What a lookup answered, owned, for comparing two lookups.
type Summary = Result<(String, String, Vec<(String, String)>), RouteError>;

fn summary(r: &Result<Found<'_, '_, String>, RouteError>) -> Summary {
    match r {
        Ok(f) => {
            let params = f.params.iter().map(|(n, v)| (n.to_owned(), v.to_owned()));
            Ok((f.handler.clone(), f.pattern.to_owned(), params.collect()))
        }
        Err(e) => Err(e.clone()),
    }
}

/// Builds a router from `routes` and checks every `(method, path, want)` case.
fn check(routes: &[(Method, &str)], cases: &[(Method, &str, Want)]) {
    let router = router(routes);
    for (method, path, want) in cases {
        let got = router.lookup(method, path);
        let context = format!("{method} {path:?}: got {got:?}, want {want:?}");
        // The same answer when the path is given as bytes.
        let by_bytes = router.lookup_bytes(method, path.as_bytes());
        assert_eq!(summary(&by_bytes), summary(&got), "{context} (as bytes)");
        match (want, &got) {
            (Hit(label, params), Ok(found)) => {
                assert_eq!(found.handler, label, "{context}");
                assert_eq!(Some(found.pattern), label.split(' ').nth(1), "{context}");
                assert_eq!(
                    found.params.iter().collect::<Vec<_>>(),
                    *params,
                    "{context}"
                );
                for (name, value) in *params {
                    assert_eq!(found.params.get(name), Some(*value), "{context}");
                }
            }
            (NotFound, Err(RouteError::NotFound)) => {}
            (NotAllowed(want), Err(RouteError::MethodNotAllowed { allow })) => {
                assert_eq!(allow, want, "{context}");
            }
            _ => panic!("{context}"),
        }
    }
}

#[test]
fn router_matches_static_routes() {
    check(
        &[
            (GET, "/"),
            (GET, "/users"),
            (GET, "/users/list"),
            (POST, "/users"),
        ],
        &[
            (GET, "/", Hit("GET /", &[])),
            (GET, "/users", Hit("GET /users", &[])),
            (POST, "/users", Hit("POST /users", &[])),
            (GET, "/users/list", Hit("GET /users/list", &[])),
            (GET, "/Users", NotFound),
            (GET, "/user", NotFound),
            (GET, "/users/list/more", NotFound),
            (GET, "/nope", NotFound),
            (GET, "", NotFound),
            (GET, "*", NotFound),
            (GET, "users", NotFound),
        ],
    );
}

#[test]
fn router_captures_params() {
    check(
        &[
            (GET, "/users/:id"),
            (GET, "/users/:id/posts/:post"),
            (GET, "/:a/:b/:c/:d/:e/:f"),
            (GET, "/api/v1:batch"),
        ],
        &[
            (GET, "/users/42", Hit("GET /users/:id", &[("id", "42")])),
            (
                GET,
                "/users/a.b-c~",
                Hit("GET /users/:id", &[("id", "a.b-c~")]),
            ),
            (
                GET,
                "/users/7/posts/hello",
                Hit(
                    "GET /users/:id/posts/:post",
                    &[("id", "7"), ("post", "hello")],
                ),
            ),
            (
                GET,
                "/1/2/3/4/5/6",
                Hit(
                    "GET /:a/:b/:c/:d/:e/:f",
                    &[
                        ("a", "1"),
                        ("b", "2"),
                        ("c", "3"),
                        ("d", "4"),
                        ("e", "5"),
                        ("f", "6"),
                    ],
                ),
            ),
            (GET, "/api/v1:batch", Hit("GET /api/v1:batch", &[])),
            (GET, "/api/v1", NotFound),
            (GET, "/users/", NotFound),
            (GET, "/users/7/posts", NotFound),
            (GET, "/users/7/posts/", NotFound),
        ],
    );
}

#[test]
fn router_wildcard_matches_rest() {
    check(
        &[
            (GET, "/files/*path"),
            (GET, "/*all"),
            (GET, "/docs/:v/*page"),
        ],
        &[
            (
                GET,
                "/files/a.txt",
                Hit("GET /files/*path", &[("path", "a.txt")]),
            ),
            (
                GET,
                "/files/a/b/c.txt",
                Hit("GET /files/*path", &[("path", "a/b/c.txt")]),
            ),
            (GET, "/files/", Hit("GET /files/*path", &[("path", "")])),
            (
                GET,
                "/files/a//b/",
                Hit("GET /files/*path", &[("path", "a//b/")]),
            ),
            (GET, "/files//", Hit("GET /files/*path", &[("path", "/")])),
            (GET, "/files", Hit("GET /*all", &[("all", "files")])),
            (GET, "/", Hit("GET /*all", &[("all", "")])),
            (GET, "//x", Hit("GET /*all", &[("all", "/x")])),
            (
                GET,
                "/docs/2/a/b",
                Hit("GET /docs/:v/*page", &[("v", "2"), ("page", "a/b")]),
            ),
            (
                GET,
                "/docs/2/",
                Hit("GET /docs/:v/*page", &[("v", "2"), ("page", "")]),
            ),
            (GET, "/docs/2", Hit("GET /*all", &[("all", "docs/2")])),
            (GET, "/docs//x", Hit("GET /*all", &[("all", "docs//x")])),
        ],
    );
}

#[test]
fn router_prefers_static_over_param_over_wildcard() {
    // Registration order must not matter: try both.
    let routes = [
        (GET, "/users/me"),
        (GET, "/users/:id"),
        (GET, "/users/*rest"),
        (GET, "/:page"),
        (GET, "/about"),
    ];
    let cases = [
        (GET, "/users/me", Hit("GET /users/me", &[])),
        (GET, "/users/you", Hit("GET /users/:id", &[("id", "you")])),
        (
            GET,
            "/users/me/x",
            Hit("GET /users/*rest", &[("rest", "me/x")]),
        ),
        (GET, "/users/", Hit("GET /users/*rest", &[("rest", "")])),
        (GET, "/about", Hit("GET /about", &[])),
        (GET, "/users", Hit("GET /:page", &[("page", "users")])),
        (GET, "/abouts", Hit("GET /:page", &[("page", "abouts")])),
    ];
    check(&routes, &cases);
    let reversed: Vec<_> = routes.iter().rev().cloned().collect();
    check(&reversed, &cases);
}

#[test]
fn router_backtracks_when_specific_branch_fails() {
    check(
        &[
            (GET, "/a/:x/c"),
            (GET, "/a/b/d"),
            (GET, "/p/:x/:y/end"),
            (GET, "/p/q/:y/other"),
            (GET, "/p/q/r/nope"),
            (GET, "/w/static/x"),
            (GET, "/w/*rest"),
            (POST, "/m/me"),
            (GET, "/m/:id"),
        ],
        &[
            (GET, "/a/b/c", Hit("GET /a/:x/c", &[("x", "b")])),
            (GET, "/a/b/d", Hit("GET /a/b/d", &[])),
            (GET, "/a/z/c", Hit("GET /a/:x/c", &[("x", "z")])),
            (GET, "/a/b/e", NotFound),
            // Two levels of static branches fail before the params succeed;
            // their captures must not leak into the result.
            (
                GET,
                "/p/q/r/end",
                Hit("GET /p/:x/:y/end", &[("x", "q"), ("y", "r")]),
            ),
            (GET, "/p/q/r/other", Hit("GET /p/q/:y/other", &[("y", "r")])),
            (
                GET,
                "/w/static/y",
                Hit("GET /w/*rest", &[("rest", "static/y")]),
            ),
            (GET, "/w/static", Hit("GET /w/*rest", &[("rest", "static")])),
            // A branch without a handler for the method also falls through.
            (GET, "/m/me", Hit("GET /m/:id", &[("id", "me")])),
            (POST, "/m/me", Hit("POST /m/me", &[])),
            (POST, "/m/you", NotAllowed("GET, HEAD")),
            (DELETE, "/m/me", NotAllowed("GET, HEAD, POST")),
        ],
    );
}

#[test]
fn router_treats_trailing_slash_as_significant() {
    check(
        &[
            (GET, "/users"),
            (GET, "/posts/"),
            (GET, "/items/:id/"),
            (GET, "/tags/:t"),
        ],
        &[
            (GET, "/users", Hit("GET /users", &[])),
            (GET, "/users/", NotFound),
            (GET, "/users//", NotFound),
            (GET, "/posts/", Hit("GET /posts/", &[])),
            (GET, "/posts", NotFound),
            (GET, "/posts//", NotFound),
            (GET, "/items/3/", Hit("GET /items/:id/", &[("id", "3")])),
            (GET, "/items/3", NotFound),
            (GET, "/items//", NotFound),
            (GET, "/tags/x", Hit("GET /tags/:t", &[("t", "x")])),
            (GET, "/tags/x/", NotFound),
            (GET, "/tags/", NotFound),
            (GET, "//tags/x", NotFound),
        ],
    );
}

#[test]
fn router_distinguishes_not_found_from_method_not_allowed() {
    let propfind = Method::from_bytes(b"PROPFIND").expect("valid method");
    let mkcol = Method::from_bytes(b"MKCOL").expect("valid method");
    let all = [
        (propfind.clone(), "/all"),
        (OPTIONS, "/all"),
        (PATCH, "/all"),
        (mkcol.clone(), "/all"),
        (DELETE, "/all"),
        (PUT, "/all"),
        (POST, "/all"),
        (GET, "/all"),
        (Method::TRACE, "/all"),
        (Method::CONNECT, "/all"),
    ];
    let mut routes = all.to_vec();
    routes.extend([
        (POST, "/form"),
        (HEAD, "/ping"),
        (DELETE, "/items/:id"),
        (PUT, "/items/:id"),
        (GET, "/items/special"),
        (POST, "/files/*rest"),
        (GET, "/files/readme"),
    ]);
    check(
        &routes,
        &[
            (
                Method::from_bytes(b"LOCK").expect("valid method"),
                "/all",
                NotAllowed(
                    "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, MKCOL, PROPFIND, TRACE",
                ),
            ),
            (HEAD, "/all", Hit("GET /all", &[])),
            (propfind, "/all", Hit("PROPFIND /all", &[])),
            (GET, "/form", NotAllowed("POST")),
            (HEAD, "/form", NotAllowed("POST")),
            (GET, "/ping", NotAllowed("HEAD")),
            (GET, "/items/1", NotAllowed("PUT, DELETE")),
            // Allow lists every route matching the path, on all branches.
            (POST, "/items/special", NotAllowed("GET, HEAD, PUT, DELETE")),
            (GET, "/files/a", NotAllowed("POST")),
            (PUT, "/files/readme", NotAllowed("GET, HEAD, POST")),
            (GET, "/form/", NotFound),
            (GET, "/items", NotFound),
            (mkcol, "/nowhere", NotFound),
        ],
    );
}

#[test]
fn router_falls_back_from_head_to_get() {
    check(
        &[
            (GET, "/a"),
            (GET, "/b"),
            (HEAD, "/b"),
            (GET, "/c/:x"),
            (HEAD, "/c/me"),
        ],
        &[
            (HEAD, "/a", Hit("GET /a", &[])),
            (HEAD, "/b", Hit("HEAD /b", &[])),
            (GET, "/b", Hit("GET /b", &[])),
            (HEAD, "/c/me", Hit("HEAD /c/me", &[])),
            (HEAD, "/c/you", Hit("GET /c/:x", &[("x", "you")])),
            (GET, "/c/me", Hit("GET /c/:x", &[("x", "me")])),
            (POST, "/a", NotAllowed("GET, HEAD")),
            (HEAD, "/z", NotFound),
        ],
    );
}

#[test]
fn router_keeps_each_method_own_param_names() {
    check(
        &[
            (GET, "/u/:id"),
            (POST, "/u/:name"),
            (GET, "/f/*path"),
            (PUT, "/f/*rest"),
        ],
        &[
            (GET, "/u/1", Hit("GET /u/:id", &[("id", "1")])),
            (POST, "/u/bob", Hit("POST /u/:name", &[("name", "bob")])),
            (GET, "/f/a/b", Hit("GET /f/*path", &[("path", "a/b")])),
            (PUT, "/f/a/b", Hit("PUT /f/*rest", &[("rest", "a/b")])),
        ],
    );
}

#[test]
fn params_keep_raw_and_decode_percent_encoding() {
    let router = router(&[
        (GET, "/users/:name"),
        (GET, "/files/*path"),
        (GET, "/caf%C3%A9"),
    ]);
    // (path, param, raw value, decoded value)
    let cases = [
        ("/users/bob", "name", "bob", "bob"),
        ("/users/j%C3%BCrgen", "name", "j%C3%BCrgen", "jürgen"),
        ("/users/a%20b+c", "name", "a%20b+c", "a b+c"),
        ("/users/a%2Fb", "name", "a%2Fb", "a/b"),
        ("/users/bad%FF", "name", "bad%FF", "bad\u{FFFD}"),
        ("/users/100%", "name", "100%", "100%"),
        (
            "/files/dir%20one/f%23.txt",
            "path",
            "dir%20one/f%23.txt",
            "dir one/f#.txt",
        ),
    ];
    for (path, name, raw, decoded) in cases {
        let found = router.lookup(&GET, path).expect(path);
        assert_eq!(found.params.get(name), Some(raw), "{path}");
        assert_eq!(
            found.params.decoded(name).as_deref(),
            Some(decoded),
            "{path}"
        );
        assert_eq!(found.params.decoded("missing"), None, "{path}");
    }
    // Literal segments are compared raw, not decoded.
    assert!(router.lookup(&GET, "/caf%C3%A9").is_ok());
    assert!(router.lookup(&GET, "/caf%c3%a9").is_err());
    assert!(router.lookup(&GET, "/café").is_err());
}

#[test]
fn router_resolves_hundreds_of_routes() {
    let mut router = Router::new();
    for i in 0..100 {
        router
            .route(GET, &format!("/api/v1/res{i}"), (i, "list"))
            .route(POST, &format!("/api/v1/res{i}"), (i, "create"))
            .route(GET, &format!("/api/v1/res{i}/:id"), (i, "show"))
            .route(GET, &format!("/api/v1/res{i}/:id/files/*path"), (i, "file"));
    }
    router.route(GET, "/api/v1/res7/special", (7, "special"));
    for i in 0..100 {
        let base = format!("/api/v1/res{i}");
        let id = (i * 7919).to_string();
        let found = |method: &Method, path: &str| {
            let found = router.lookup(method, path).expect(path);
            let values: Vec<_> = found.params.iter().map(|(_, v)| v.to_owned()).collect();
            (*found.handler, values)
        };
        assert_eq!(found(&GET, &base), ((i, "list"), vec![]));
        assert_eq!(found(&POST, &base), ((i, "create"), vec![]));
        assert_eq!(
            found(&GET, &format!("{base}/{id}")),
            ((i, "show"), vec![id.clone()])
        );
        let file = format!("{base}/{id}/files/x/y.txt");
        assert_eq!(
            found(&GET, &file),
            ((i, "file"), vec![id, "x/y.txt".into()])
        );
        let allow = RouteError::MethodNotAllowed {
            allow: "GET, HEAD, POST".into(),
        };
        assert_eq!(router.lookup(&DELETE, &base).err(), Some(allow));
        let missing = format!("{base}x");
        assert_eq!(
            router.lookup(&GET, &missing).err(),
            Some(RouteError::NotFound)
        );
    }
    let special = router
        .lookup(&GET, "/api/v1/res7/special")
        .expect("special");
    assert_eq!(*special.handler, (7, "special"));
    assert_eq!(
        format!("{router:?}").matches("GET /api/v1/res").count(),
        301
    );
}

#[test]
fn router_lookup_bytes_refuses_what_is_not_utf8() {
    let router = router(&[(GET, "/a/:x"), (GET, "/b")]);
    assert_eq!(
        router.lookup_bytes(&GET, b"/a/\xff").unwrap_err(),
        RouteError::NotFound
    );
    assert_eq!(router.lookup_bytes(&GET, b"/b").unwrap().pattern, "/b");
    let found = router.lookup_bytes(&GET, b"/a/x").unwrap();
    assert_eq!(found.params.get("x"), Some("x"));
}

#[test]
fn route_error_maps_to_status() {
    let cases = [
        (RouteError::NotFound, StatusCode::NOT_FOUND),
        (
            RouteError::MethodNotAllowed {
                allow: "GET".into(),
            },
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (error, status) in cases {
        assert_eq!(error.status(), status, "{error}");
    }
}

#[test]
fn router_debug_lists_routes_without_handlers() {
    let router = router(&[(GET, "/b"), (POST, "/a/:id"), (GET, "/*rest")]);
    assert_eq!(format!("{router:?}"), "[POST /a/:id, GET /b, GET /*rest]");
    let found = router.lookup(&POST, "/a/1").expect("route exists");
    assert_eq!(
        format!("{found:?}"),
        r#"Found { pattern: "/a/:id", params: {"id": "1"}, .. }"#
    );
}

/// Pattern checks: each invalid pattern panics with its reason.
fn route_panics(routes: &[(Method, &str)]) {
    router(routes);
}

#[test]
#[should_panic(expected = "must be the last segment")]
fn route_panics_on_wildcard_not_last() {
    route_panics(&[(GET, "/files/*path/edit")]);
}

#[test]
#[should_panic(expected = "empty parameter name")]
fn route_panics_on_empty_param_name() {
    route_panics(&[(GET, "/users/:/edit")]);
}

#[test]
#[should_panic(expected = "empty parameter name")]
fn route_panics_on_empty_wildcard_name() {
    route_panics(&[(GET, "/files/*")]);
}

#[test]
#[should_panic(expected = "conflicts with the existing route GET /users/:id")]
fn route_panics_on_duplicate_route() {
    route_panics(&[
        (GET, "/users/:id"),
        (POST, "/users/:id"),
        (GET, "/users/:id"),
    ]);
}

#[test]
#[should_panic(expected = "conflicts with the existing route GET /users/:id")]
fn route_panics_on_same_shape_with_other_names() {
    route_panics(&[(GET, "/users/:id"), (GET, "/users/:name")]);
}

#[test]
#[should_panic(expected = "conflicts with the existing route PUT /f/*a")]
fn route_panics_on_duplicate_wildcard() {
    route_panics(&[(PUT, "/f/*a"), (PUT, "/f/*b")]);
}

#[test]
#[should_panic(expected = "parameter name used twice")]
fn route_panics_on_repeated_param_name() {
    route_panics(&[(GET, "/:id/x/:id")]);
}

#[test]
#[should_panic(expected = "must start with '/'")]
fn route_panics_on_missing_leading_slash() {
    route_panics(&[(GET, "users")]);
}

#[test]
#[should_panic(expected = "empty segment")]
fn route_panics_on_empty_middle_segment() {
    route_panics(&[(GET, "/a//b")]);
}

#[test]
#[should_panic(expected = "ASCII letters, digits and '_'")]
fn route_panics_on_bad_param_name() {
    route_panics(&[(GET, "/a/:na-me")]);
}

#[test]
#[should_panic(expected = "cannot occur in a path")]
fn route_panics_on_query_in_pattern() {
    route_panics(&[(GET, "/search?q=:q")]);
}
