#!/usr/bin/env python3
"""A small, exact HTTP load for instruction counting: sends TOTAL requests for
/bench/plaintext to 127.0.0.1:PORT and waits for every answer.

  request-client.py PORT TOTAL pipelined   # 4 connections, 16 requests in flight on each
  request-client.py PORT TOTAL keepalive   # 16 connections, one request in flight on each
"""
import select
import socket
import sys

REQUEST = b"GET /bench/plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b"Hello, World!"


def main():
    port, total, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    conns, depth = (4, 16) if mode == "pipelined" else (16, 1)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    sent = done = 0
    pending = {}
    for s in socks:
        n = min(depth, total - sent)
        if n:
            s.sendall(REQUEST * n)
            sent += n
            pending[s] = [n, b""]
    while done < total:
        ready, _, _ = select.select(list(pending), [], [], 30)
        if not ready:
            sys.exit(f"no answer for 30 s after {done} of {total}")
        for s in ready:
            data = s.recv(65536)
            if not data:
                sys.exit("the server closed a connection")
            state = pending[s]
            buf = state[1] + data
            while BODY in buf:
                buf = buf[buf.index(BODY) + len(BODY):]
                done += 1
                state[0] -= 1
            state[1] = buf
            if state[0] == 0 and sent < total:
                n = min(depth, total - sent)
                s.sendall(REQUEST * n)
                sent += n
                state[0] = n
    print(done)


if __name__ == "__main__":
    main()
