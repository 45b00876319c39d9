"""Connects, checks one echo, then waits for the server's shutdown to close
the connection with 1001. argv: the URL of an echo route."""

from wsclient import connect, expect_close, log, roundtrip, run


async def main(url):
    ws = await connect(url)
    await roundtrip(ws, "before shutdown", "before shutdown")
    log("waiting for the shutdown")
    await expect_close(ws, 1001, "shutdown")


run(main)
