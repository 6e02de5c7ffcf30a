// Renders the gateway's OpenAPI document on /api/docs with Swagger UI (loaded just before,
// from this server). A file of its own: the Content-Security-Policy allows no inline script.
"use strict";

const root = document.getElementById("swagger-ui");
SwaggerUIBundle({
  url: root.dataset.documentUrl,
  domNode: root,
  // By default Swagger UI asks validator.swagger.io for a badge: a third party, which the
  // CSP refuses anyway.
  validatorUrl: null,
  deepLinking: true,
});
