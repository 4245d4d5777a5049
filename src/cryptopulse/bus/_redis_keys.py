"""Redis key layout, the publish script and decoding of stream entries.

Per channel `C` (prefix `P`, default `cp:`):

- `P s:C`   a Redis Stream, one entry per message, entry id `<seq>-0`, fields `t` (time),
  `d` (the payload JSON) and `e` (epoch); trimmed with `XADD ... MAXLEN ~ history`.
- `P m:C`   a hash: `seq` (the last seq written) and `epoch` (set when the hash is created:
  a new epoch means Redis lost the channel's history, e.g. it was flushed or restarted
  without persistence).
- `P latest`   a hash channel -> payload for `ticker:` channels: the latest-state cache a
  fresh API worker loads on start.
- `P channels` a set of every channel ever published (publishers bootstrap their seqs from it).
- `P state:NAME` small hashes an ingest process shares with API workers (sources, feeds).
"""

from __future__ import annotations

from typing import Any

from cryptopulse.bus.base import Message, build_message

# The publisher assigns seqs itself (one ingest shard owns each channel) and this script
# writes the entry, the channel's seq and the latest-state cache atomically. A seq at or
# below the stored one is refused (0): two publishers for one channel, a misconfiguration.
PUBLISH_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('SADD', KEYS[4], ARGV[1])
end
local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if tonumber(ARGV[2]) <= top then
  return {0, epoch, top}
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], ARGV[2] .. '-0',
           't', ARGV[3], 'd', ARGV[4], 'e', epoch)
redis.call('HSET', KEYS[1], 'seq', ARGV[2])
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
end
return {1, epoch, tonumber(ARGV[2])}
"""


class Keys:
    """Key names under one prefix."""

    __slots__ = ("channels", "latest", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.latest = f"{prefix}latest"
        self.channels = f"{prefix}channels"

    def stream(self, channel: str) -> str:
        return f"{self.prefix}s:{channel}"

    def meta(self, channel: str) -> str:
        return f"{self.prefix}m:{channel}"

    def state(self, name: str) -> str:
        return f"{self.prefix}state:{name}"

    def channel_of(self, stream_key: str | bytes) -> str:
        text = stream_key.decode() if isinstance(stream_key, bytes) else stream_key
        return text[len(self.prefix) + 2 :]


def keeps_latest(channel: str) -> bool:
    """Channels whose latest payload goes to the latest-state cache."""
    return channel.startswith("ticker:")


def entry_seq(entry_id: bytes | str) -> int:
    """`b"1234-0"` -> 1234."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def entry_message(channel: str, entry: Any) -> Message:
    """A bus message from one stream entry, `(id, {b"t": time, b"d": data, b"e": epoch})`."""
    entry_id, fields = entry
    epoch = int(fields.get(b"e", 0))
    return build_message(channel, entry_seq(entry_id), int(fields[b"t"]), fields[b"d"], epoch)


def as_int(value: bytes | str | int | None) -> int | None:
    if value is None:
        return None
    return int(value)
