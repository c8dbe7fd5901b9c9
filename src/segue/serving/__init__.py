"""The HTTP service: app factory, routes, schemas, the loaded-model store and the web page."""

# The uvicorn protocol (its ``http`` option) every Segue server runs, by name: worker processes
# import it, and naming it here costs the command line no import of uvicorn.
HTTP_PROTOCOL = "segue.serving.http_protocol:CoalescingHttpToolsProtocol"
