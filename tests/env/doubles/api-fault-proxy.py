"""A TLS-terminating HTTP/1.1 proxy in front of the API server that injects faults on command,
for the e2e tests of an operator whose API traffic is throttled, cut mid-stream or cut off.

It listens with the given certificate (one the client's kubeconfig trusts) and forwards each
connection to the API server over TLS (verified with the API server's CA); the client's bearer
token passes through unchanged. Requests are framed by Content-Length (a chunked request
passes through unread from then on); answers are relayed as they come, so watches and logs
stream. Faults, set through a plain-HTTP control port on 127.0.0.1:

  POST /throttle?every=N&match=S  answer 429 Too Many Requests, Retry-After: 1, to the 1st,
                                  (N+1)th, ... request of each pod log request's target (GET
                                  .../pods/P/log?...: a retry is the next request of its
                                  target) that contains S (each S, when several); every=0 stops
  POST /cut?match=S&bytes=N       the next request whose target contains S (each) is forwarded,
                                  and its answer's head and first N bytes of body (as sent:
                                  chunked framing included) are relayed; then both connections
                                  are dropped. Once.
  POST /sever                     drop every connection, and drop each new one at once
  POST /restore                   forward again (the faults above are cleared too)
  GET  /stats                     {"requests", "throttled", "cut", "severed", "logRequests"}

Each POST answers the stats as well. Usage:
api-fault-proxy.py UPSTREAM_HOST:PORT UPSTREAM_CA CERT_FILE KEY_FILE
It prints "listening PORT control PORT" once both ports are open (both chosen free)."""
import asyncio
import json
import re
import ssl
import sys
import urllib.parse

LOG_PATH = re.compile(r"^/api/v1/namespaces/[^/]+/pods/[^/]+/log(\?|$)")
MAX_HEAD = 64 << 10

state = {"every": 0, "throttle_match": [], "cut_match": None, "cut_bytes": 0, "severed": False}
stats = {"requests": 0, "throttled": 0, "cut": 0, "severed": 0, "logRequests": 0}
connections = set()


def too_many_requests():
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "too many requests (api-fault-proxy)",
                       "reason": "TooManyRequests", "code": 429}).encode()
    head = ("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class Conn:
    def __init__(self, client_reader, client_writer, up_reader, up_writer):
        self.client_reader, self.client_writer = client_reader, client_writer
        self.up_reader, self.up_writer = up_reader, up_writer
        # Body bytes still to relay of the answer being cut (None: no cut armed), and that
        # answer's head as far as read.
        self.cut_after = None
        self.head = bytearray()
        self.head_seen = False

    def drop(self):
        for w in (self.client_writer, self.up_writer):
            w.transport.abort()

    async def answers(self):
        """Relays the API server's answers; cuts the one armed for it."""
        try:
            while data := await self.up_reader.read(65536):
                done = False
                if self.cut_after is not None:
                    data, done = self.cut(data)
                self.client_writer.write(data)
                await self.client_writer.drain()
                if done:
                    stats["cut"] += 1
                    self.drop()
                    return
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self.client_writer.close()

    def cut(self, data):
        """What of `data` to relay before the armed cut, and whether the cut is reached: the
        answer's head whole, then `cut_after` bytes of its body."""
        head = b""
        if not self.head_seen:
            before = len(self.head)
            self.head.extend(data)
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return data, False
            self.head_seen = True
            body_start = end + 4 - before
            head, data = data[:body_start], data[body_start:]
        take = data[: self.cut_after]
        self.cut_after -= len(take)
        return head + take, self.cut_after <= 0

    async def requests(self):
        """Reads each request, answers it with a fault or forwards it."""
        try:
            while True:
                try:
                    head = await self.client_reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                stats["requests"] += 1
                body = b""
                if "content-length" in headers:
                    body = await self.client_reader.readexactly(int(headers["content-length"]))
                if await self.fault(method, target):
                    if headers.get("connection", "").lower() == "close":
                        return
                    continue
                self.up_writer.write(head + body)
                await self.up_writer.drain()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    while data := await self.client_reader.read(65536):
                        self.up_writer.write(data)
                        await self.up_writer.drain()
                    return
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # The client is done (or gone): nothing more to relay to it. Closed, not aborted:
            # an answer of our own still buffered goes out first.
            self.up_writer.transport.abort()
            self.client_writer.close()

    async def fault(self, method, target):
        """Answers the request with a 429 itself (True), or arms a cut and lets it pass."""
        is_log = method == "GET" and LOG_PATH.match(target)
        if is_log:
            stats["logRequests"] += 1
        if is_log and state["every"] > 0 and all(m in target for m in state["throttle_match"]):
            # Counted per request target: a retry of the same log is the next of its count.
            seen = state.setdefault("seen", {})
            n = seen.get(target, 0)
            seen[target] = n + 1
            if n % state["every"] == 0:
                stats["throttled"] += 1
                self.client_writer.write(too_many_requests())
                await self.client_writer.drain()
                return True
        if state["cut_match"] is not None and all(m in target for m in state["cut_match"]):
            self.cut_after = state["cut_bytes"]
            state["cut_match"] = None
        return False


async def control(reader, writer):
    try:
        request = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, target = request.split(" ")[:2]
        url = urllib.parse.urlsplit(target)
        pairs = urllib.parse.parse_qsl(url.query)
        query = dict(pairs)
        matching = [v for k, v in pairs if k == "match"]
        status = "200 OK"
        if method == "POST" and url.path == "/throttle":
            state.update(every=int(query.get("every", "0")), throttle_match=matching, seen={})
        elif method == "POST" and url.path == "/cut":
            state.update(cut_match=matching, cut_bytes=int(query.get("bytes", "0")))
        elif method == "POST" and url.path == "/sever":
            state["severed"] = True
            for conn in list(connections):
                stats["severed"] += 1
                conn.drop()
        elif method == "POST" and url.path == "/restore":
            state.update(every=0, cut_match=None, severed=False)
        elif not (method == "GET" and url.path == "/stats"):
            status = "404 Not Found"
        body = json.dumps(stats).encode()
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    upstream, upstream_ca, cert, key = sys.argv[1:5]
    host, port = upstream.rsplit(":", 1)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    client_side = ssl.create_default_context(cafile=upstream_ca)

    async def handle(client_reader, client_writer):
        if state["severed"]:
            stats["severed"] += 1
            client_writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                host, int(port), ssl=client_side, server_hostname=host, limit=MAX_HEAD)
        except OSError:
            client_writer.transport.abort()
            return
        conn = Conn(client_reader, client_writer, up_reader, up_writer)
        connections.add(conn)
        try:
            await asyncio.gather(conn.requests(), conn.answers())
        finally:
            connections.discard(conn)

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_side, limit=MAX_HEAD)
    controller = await asyncio.start_server(control, "127.0.0.1", 0)
    print(f"listening {proxy.sockets[0].getsockname()[1]} "
          f"control {controller.sockets[0].getsockname()[1]}", flush=True)
    async with proxy, controller:
        await asyncio.gather(proxy.serve_forever(), controller.serve_forever())


asyncio.run(main())
