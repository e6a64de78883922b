"""A small page server on loopback for the url_get workload (PEP 371 fetched a Tomcat error page).

It runs in its own process, not in a thread of the benchmark: a server thread would share the GIL
with the threads being measured and turn an I/O benchmark into a GIL benchmark. The server prints its
URL on stdout and exits when its stdin closes, so it cannot outlive the benchmark that started it,
even one that was killed.

    python shmproc/bench/http_server.py        # serves until stdin closes
"""
import contextlib
import http.server
import os
import subprocess
import sys
import threading

__all__ = ["PAGE", "serving"]

PAGE = (b"<html><head><title>Apache Tomcat - Error report</title></head><body>"
        b"<h1>HTTP Status 404 - /missing</h1><hr/><p><b>type</b> Status report</p>"
        b"<p><b>message</b> <u>/missing</u></p><p><b>description</b> <u>The requested resource "
        b"(/missing) is not available.</u></p><hr/><h3>Apache Tomcat</h3></body></html>\n" * 4)
START_TIMEOUT = 30


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format, *args):
        pass


class PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 overflows when 8 workers connect at once, and a dropped
    # SYN is retried after a whole second: the benchmark would time the kernel's retry timer.
    request_queue_size = 128


def serve_until_stdin_closes():
    server = PageServer(("127.0.0.1", 0), PageHandler)
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    # A short poll interval: shutdown() waits for the loop's next poll (0.5 s by default, per run).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    print(f"http://{host}:{port}/", flush=True)
    sys.stdin.read()
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def serving():
    """Start the server in a child process; yield its URL; stop it."""
    # Run as a script, not with -m: that would import the shmproc package (and numpy) first.
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None     # both PIPE
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the benchmark page server did not start (it printed {url!r})")
        yield url
    finally:
        server.stdin.close()
        try:
            server.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


if __name__ == "__main__":
    serve_until_stdin_closes()
