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

# The publisher assigns seqs itself (one ingest shard owns each channel); this script
# writes a whole batch of messages: entries, each channel's seq, the latest-state cache.
# One call per batch instead of one per message keeps the publisher's cost per message low
# (keys are derived from the prefix inside the script: standalone Redis, not Cluster).
# A seq at or below the stored one is refused (0): two publishers for one channel.
# ARGV: prefix, maxlen, epoch for channels created now, then per message: channel, seq,
# time, data, keep-latest ("1"/"0"). Returns per message: ok (1/0), epoch.
PUBLISH_LUA = """
local prefix, maxlen, now = ARGV[1], ARGV[2], ARGV[3]
local out, state, latest = {}, {}, {}
for i = 4, #ARGV, 5 do
  local channel, seq = ARGV[i], tonumber(ARGV[i + 1])
  local s = state[channel]
  if not s then
    local meta = prefix .. 'm:' .. channel
    local got = redis.call('HMGET', meta, 'epoch', 'seq')
    local epoch = got[1]
    if not epoch then
      epoch = now
      redis.call('HSET', meta, 'epoch', epoch)
      redis.call('SADD', prefix .. 'channels', channel)
    end
    s = {meta = meta, stream = prefix .. 's:' .. channel, epoch = epoch,
         top = tonumber(got[2] or '0'), dirty = false}
    state[channel] = s
  end
  local added = false
  if seq > s.top then
    -- pcall: one bad entry (an id below the stream's top) must not fail the batch
    local reply = redis.pcall('XADD', s.stream, 'MAXLEN', '~', maxlen, ARGV[i + 1] .. '-0',
                              't', ARGV[i + 2], 'd', ARGV[i + 3], 'e', s.epoch)
    added = type(reply) ~= 'table' or reply.err == nil
  end
  if added then
    s.top, s.dirty = seq, true
    if ARGV[i + 4] == '1' then latest[channel] = ARGV[i + 3] end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  out[#out + 1] = s.epoch
end
for channel, s in pairs(state) do
  if s.dirty then redis.call('HSET', s.meta, 'seq', s.top) end
end
for channel, data in pairs(latest) do
  redis.call('HSET', prefix .. 'latest', channel, data)
end
return out
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
