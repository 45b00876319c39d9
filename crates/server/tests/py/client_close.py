"""The client starts the close handshake with 4000 "bye"; the server
answers with 4000. argv: the URL of an echo route."""

from wsclient import connect, log, roundtrip, run


async def main(url):
    ws = await connect(url)
    await roundtrip(ws, "before closing", "before closing")
    await ws.close(4000, "bye")
    await ws.wait_closed()
    log(f"closed: code {ws.close_code} reason {ws.close_reason!r}")
    assert ws.close_code == 4000, f"close code {ws.close_code}, expected the server to echo 4000"


run(main)
