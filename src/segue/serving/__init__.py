"""The HTTP service: app factory, routes, schemas, the loaded-model store and the web page."""
