#!/usr/bin/env python3
"""A plain-HTTP proxy on 127.0.0.1 in front of a TLS registry, for pull tests that need the
network to misbehave on cue.

usage: registry-proxy.py PORTFILE UPSTREAM CAFILE MODE LOG
  MODE stall: the first response of each blob stops after half its bytes until the client goes
              away (the test kills the daemon meanwhile); later ones pass (Range included).
  MODE flip:  blob bodies pass with one byte flipped.
  MODE bloat: manifests are answered with a 5 MiB document (no registry would store one).
Each request is logged to LOG as `METHOD PATH RANGE STATUS`. The chosen port is written to
PORTFILE once the proxy listens.
"""
import http.client, http.server, os, ssl, sys, threading

portfile, upstream, cafile, mode, logfile = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile)
stalled = set()
lock = threading.Lock()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.forward("GET")

    def do_HEAD(self):
        self.forward("HEAD")

    def forward(self, method):
        if mode == "bloat" and "/manifests/" in self.path and self.headers.get("Authorization"):
            body = b'{"schemaVersion": 2, "padding": "' + b"x" * (5 << 20) + b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            return
        conn = http.client.HTTPSConnection(upstream, context=context, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "range")}
        conn.request(method, self.path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        with open(logfile, "a") as f:
            f.write("%s %s %s %d\n" % (method, self.path, self.headers.get("Range", "-"), r.status))
        blob = "/blobs/sha256:" in self.path and r.status in (200, 206) and len(body) > 1
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if method == "HEAD":
            return
        if blob and mode == "flip":
            body = body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 0xFF]) + body[len(body) // 2 + 1:]
        if blob and mode == "stall":
            with lock:
                first = self.path not in stalled
                stalled.add(self.path)
            if first and len(body) > 4096:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                # Hold the connection until the client is gone (it is killed).
                try:
                    self.connection.settimeout(None)
                    while self.connection.recv(1):
                        pass
                except OSError:
                    pass
                return
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
