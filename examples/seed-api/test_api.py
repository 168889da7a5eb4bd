"""Unit tests of the seed's API, against a real server on a free loopback port."""

import json
import threading
import unittest
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import api


class StoreTest(unittest.TestCase):
    def test_items_get_increasing_ids(self):
        store = api.Store()
        self.assertEqual(store.add("a")["id"], 1)
        self.assertEqual(store.add(" b ")["name"], "b")
        self.assertEqual(len(store.items), 2)

    def test_an_empty_name_is_refused(self):
        with self.assertRaises(ValueError):
            api.Store().add("  ")

    def test_version_defaults(self):
        self.assertEqual(api.version_info({}),
                         {"version": "unknown", "environment": "development"})


class ServerTest(unittest.TestCase):
    def setUp(self):
        environ = {"APP_VERSION": "abc123", "APP_ENV": "test"}
        handler = api.make_handler(api.Store(), environ)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll interval: shutdown() waits for the server loop's next poll.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def request(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        try:
            with urllib.request.urlopen(self.base + path, data) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def test_health(self):
        self.assertEqual(self.request("/health"), (200, {"status": "ok"}))

    def test_version_is_the_build_commit(self):
        status, body = self.request("/version")
        self.assertEqual(status, 200)
        self.assertEqual(body["version"], "abc123")
        self.assertEqual(body["environment"], "test")

    def test_items_round_trip(self):
        self.assertEqual(self.request("/items", {"name": "x"})[0], 201)
        self.assertEqual(self.request("/items"), (200, [{"id": 1, "name": "x"}]))

    def test_bad_item_is_a_400(self):
        self.assertEqual(self.request("/items", {"name": ""})[0], 400)

    def test_unknown_path_is_a_404(self):
        self.assertEqual(self.request("/nope")[0], 404)


if __name__ == "__main__":
    unittest.main()
