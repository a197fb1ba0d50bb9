// Package console is registryd's web console: server-rendered HTML pages
// under /console/ over the same store, the same identities and the same
// Authorizer as the OCI, ECR and admin APIs.
//
// The nouns:
//
//   - a page is one GET route that renders a template (repositories, a
//     repository, an image, the file browser, a diff, the lifecycle
//     editor, scan findings, creation templates and pull-through rules,
//     store health); every page asks the Authorizer the actions the API
//     that shows the same thing asks, before it reads anything;
//   - an action is one POST route (sign in, sign out, delete an image,
//     tag an image, save a lifecycle policy, preview one); it needs a
//     session and that session's CSRF token, and asks the Authorizer the
//     API's action: a page offers a button only when the same question
//     is answered yes, and a forced request is refused with 403;
//   - a session is server-side (sessions.go): a random id in an HttpOnly,
//     SameSite=Strict cookie (Secure over TLS), the user it signed in, a
//     CSRF token, an idle and an absolute expiry. On an open registry
//     (no authentication) every visitor gets an anonymous session, whose
//     questions the Authorizer answers as it answers the APIs'.
//
// Templates and assets are embedded (embed); html/template escapes every
// name, tag, label and file name that comes from an image. Reading works
// without JavaScript; console.js only refreshes the lifecycle preview as
// the policy is typed.
package console
