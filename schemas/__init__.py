"""The hfbus wire contract: msgspec structs, subjects and codecs. Imports nothing but msgspec and the stdlib."""

from schemas.chat import ChatMessage, ChatOutput, ChatRequest, ChatResult, ContentPart, ImagePart, ImageURL, TextPart
from schemas.codec import Codec, codec_for, decode_output, encode
from schemas.common import Chunk, Error, ErrorCode, Output, Progress, RequestBase, Result, Tag, TokenUsage
from schemas.subjects import Subjects

__all__ = [
    "ChatMessage",
    "ChatOutput",
    "ChatRequest",
    "ChatResult",
    "Chunk",
    "Codec",
    "ContentPart",
    "Error",
    "ErrorCode",
    "ImagePart",
    "ImageURL",
    "Output",
    "Progress",
    "RequestBase",
    "Result",
    "Subjects",
    "Tag",
    "TextPart",
    "TokenUsage",
    "codec_for",
    "decode_output",
    "encode",
]
