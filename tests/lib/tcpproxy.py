"""A TCP proxy on 127.0.0.1 for fault tests: put it between a service and
Redis (or anything) and decide, chunk by chunk, what reaches the other side.

    px = TcpProxy(redis_port, to_client=lambda conn, data: 0.15)  # every reply 150 ms late
    url = "redis://127.0.0.1:%d/0" % px.port

Each connection gets two threads, one per direction, so a reply split over
several reads, or pipelined commands, flow as they would without the proxy.
A hook gets (conn, data): conn is a dict kept for that connection (both
directions see the same one; "n_client"/"n_server" count the chunks sent so
far each way), data the bytes just read. It returns None to forward them,
a number of seconds to wait first, or TcpProxy.DROP to close both sides
instead (the bytes are lost)."""
import socket
import threading
import time


class TcpProxy:
    DROP = object()

    def __init__(self, upstream_port, to_server=None, to_client=None):
        self.upstream = upstream_port
        self.hooks = {"server": to_server, "client": to_client}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            for sk in (c, s):
                sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = {"n_client": 0, "n_server": 0}
            threading.Thread(target=self._pump, args=(c, s, "server", conn),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, "client", conn),
                             daemon=True).start()

    def _pump(self, src, dst, toward, conn):
        hook = self.hooks[toward]
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                act = hook(conn, data) if hook else None
                if act is TcpProxy.DROP:
                    break
                if act:
                    time.sleep(act)
                dst.sendall(data)
                conn["n_" + toward] += 1
        except OSError:
            pass
        for sk in (src, dst):
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
