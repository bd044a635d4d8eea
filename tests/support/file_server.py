"""A download server on loopback (port 0) for firmware update tests: http.server
answering GET of a known path with its bytes (200), anything else 404."""

import http.server
import threading


class _Files(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        data = self.server.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")


class FileServer:
    """files: {"/path": bytes}; base: "http://127.0.0.1:<port>"."""

    def __init__(self, files):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
        self.httpd.daemon_threads = True
        self.httpd.files = dict(files)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
