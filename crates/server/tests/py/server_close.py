"""The server sends "hi", then closes with 4001 "done". argv: that route's URL."""

from wsclient import connect, expect_close, log, run


async def main(url):
    ws = await connect(url)
    got = await ws.recv()
    log(f"received {got!r}")
    assert got == "hi", f"first message {got!r}, expected 'hi'"
    await expect_close(ws, 4001, "server close", reason="done")


run(main)
