"""Real upload servers on loopback (port 0) for GetDiagnostics / GetLog tests:
http.server with PUT and POST (multipart) handlers, optionally over TLS.

    /put/...     PUT stored (201)
    /form/...    PUT answered 405 (after reading the body); POST multipart stored
    /auth/...    PUT needs HTTP Basic op:s3cret (401 otherwise)
    /stall/...   the first PUT reads 1000 bytes and stalls; later ones are stored
    /early/...   every PUT reads 1000 bytes and closes the connection unanswered
    /slow/...    PUT read at about 64 KiB/s (benchmarks)
    anything else: 404
"""

import base64
import http.server
import ssl
import threading
import time


class UploadHandler(http.server.BaseHTTPRequestHandler):
    server_version = "test-upload"

    def log_message(self, *args):
        pass

    def _answer(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_PUT(self):
        srv = self.server
        path = self.path
        srv.hits[path] = srv.hits.get(path, 0) + 1
        if path.startswith("/put/"):
            srv.stored[path] = self._body()
            return self._answer(201)
        if path.startswith("/form/"):
            self._body()
            return self._answer(405)
        if path.startswith("/auth/"):
            body = self._body()
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(
                    b"op:s3cret").decode():
                return self._answer(401)
            srv.stored[path] = body
            return self._answer(201)
        if path.startswith(("/stall/", "/early/")):
            if path.startswith("/stall/") and srv.hits[path] > 1:
                srv.stored[path] = self._body()
                return self._answer(201)
            self.rfile.read(1000)
            if path.startswith("/stall/"):
                srv.release.wait(2.0)
            self.close_connection = True
            return
        if path.startswith("/slow/"):
            left, data = int(self.headers.get("Content-Length", 0)), []
            while left > 0:
                chunk = self.rfile.read(min(left, 8192))
                if not chunk:
                    break
                data.append(chunk)
                left -= len(chunk)
                time.sleep(0.125)
            srv.stored[path] = b"".join(data)
            return self._answer(201)
        self._body()
        return self._answer(404)

    def do_POST(self):
        srv = self.server
        if not self.path.startswith("/form/"):
            self._body()
            return self._answer(404)
        srv.stored[self.path] = self._body()
        srv.forms[self.path] = self.headers.get("Content-Type", "")
        return self._answer(201)


class UploadServer:
    def __init__(self, tls_files=None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), UploadHandler)
        self.httpd.daemon_threads = True
        self.httpd.hits, self.httpd.stored, self.httpd.forms = {}, {}, {}
        self.httpd.release = threading.Event()
        scheme = "http"
        if tls_files:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_files)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.base = "%s://127.0.0.1:%d" % (scheme, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def stored(self):
        return self.httpd.stored

    @property
    def forms(self):
        return self.httpd.forms

    @property
    def hits(self):
        return self.httpd.hits

    def stop(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def multipart_file(body, content_type):
    """(filename, content) of the one file part of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    part = body.split(b"--" + boundary)[1]
    head, content = part.split(b"\r\n\r\n", 1)
    filename = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
    return filename, content[:-2]       # the CRLF before the closing boundary
