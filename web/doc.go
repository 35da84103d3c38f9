// Package web holds the connectors page, a reference client of the REST API that the API node serves at /ui/.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the binary:
// there is no build step, so what is committed is exactly what is served. It
// talks to the service only through the public /api routes, with the API key
// the developer types in (kept in the tab's sessionStorage).
package web
