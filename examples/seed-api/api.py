"""The seed's API: a small HTTP service with a health check and its version.

GET /health   {"status": "ok"}
GET /version  {"version": <the commit it was built from>, "environment": <APP_ENV>}
GET /items    the items kept in memory; POST /items adds one ({"name": ...})

Configuration comes from the environment: PORT (default 8000), APP_VERSION (set when
the image is built) and APP_ENV (set by the deploy).
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Store:
    """The items, in memory."""

    def __init__(self):
        self.items = []

    def add(self, name):
        name = (name or "").strip()
        if not name:
            raise ValueError("an item needs a non-empty name")
        item = {"id": len(self.items) + 1, "name": name}
        self.items.append(item)
        return item


def version_info(environ):
    return {
        "version": environ.get("APP_VERSION", "unknown"),
        "environment": environ.get("APP_ENV", "development"),
    }


def make_handler(store, environ):
    class Handler(BaseHTTPRequestHandler):
        server_version = "seed-api/1"

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self.answer(200, {"status": "ok"})
            elif self.path == "/version":
                self.answer(200, version_info(environ))
            elif self.path == "/items":
                self.answer(200, store.items)
            else:
                self.answer(404, {"error": "not found: " + self.path})

        def do_POST(self):
            if self.path != "/items":
                self.answer(404, {"error": "not found: " + self.path})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                self.answer(201, store.add(body.get("name")))
            except (ValueError, AttributeError) as error:
                self.answer(400, {"error": str(error)})

        def log_message(self, format, *args):
            print("%s %s" % (self.address_string(), format % args), flush=True)

    return Handler


def serve(environ):
    port = int(environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port),
                                 make_handler(Store(), environ))
    version = version_info(environ)["version"]
    print("seed-api %s listening on %d" % (version, port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(os.environ)
