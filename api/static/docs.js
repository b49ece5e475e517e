// Starts Swagger UI on /docs; a file of its own, since the page's policy runs no inline
// script (api/security_headers.py). Authorize with your token (the lock button) to try
// requests from this page.
window.ui = SwaggerUIBundle({url: "/v1/openapi.json", dom_id: "#swagger-ui",
                            deepLinking: true, persistAuthorization: false});
