"""Why an upload cannot be used: a stable English code for machines, a zh-CN sentence for the clerk.

Every refusal a clinic clerk should see, from probing, transcoding or photo cleaning, is a
`MediaRejected`; the sentences for the fixed codes live here, in one place.
"""

from __future__ import annotations

_MESSAGES = {
    "not_a_video": "文件不是有效的视频，请上传手机拍摄的 MP4/MOV 视频",
    "no_video_stream": "文件中没有视频画面，请上传手机拍摄的视频",
    "truncated": "视频文件不完整（上传或拷贝可能中断），请重新上传",
    "corrupt": "视频画面无法解码，文件可能已损坏，请从手机重新导出后上传",
    "unsupported_codec": "视频编码格式不受支持，请上传手机直接拍摄的 MP4/MOV 视频（H.264 或 HEVC）",
    "unsupported_audio": "视频的声音格式不受支持，请上传手机直接拍摄的 MP4/MOV 视频",
    "size_mismatch": "收到的文件大小与上传时不符，上传可能中断，请重新上传",
    "transcode_timeout": "视频处理超时，请剪短视频或降低分辨率后重新上传",
    "not_an_image": "文件不是有效的照片，请上传 JPG、PNG 或 WebP 格式的照片",
}


class MediaRejected(Exception):
    """An upload that cannot be used, with a code for machines and a sentence for the clerk."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def rejection(code: str) -> MediaRejected:
    """The refusal for one of the fixed codes, with its sentence."""
    return MediaRejected(code, _MESSAGES[code])
