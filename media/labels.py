"""The media domain's words in zh-CN (an asset's statuses, what the uploader says): one each."""

from __future__ import annotations

# Every status of media.models.STATUSES, for a photo or a video ("视频" + label reads as a
# sentence).
MEDIA_STATUS_LABELS = {
    "receiving": "上传未完成",
    "uploaded": "已上传，等待处理",
    "processing": "正在转码处理",
    "ready": "已就绪",
    "failed": "处理失败",
    "replaced": "已被新视频替换",
    "removed": "已删除",
}

# What the portal's video uploader says while a new video goes through those statuses: the
# long form of MEDIA_STATUS_LABELS, telling the clerk what happens next.
VIDEO_PROGRESS_LABELS = {
    "receiving": "上传未完成",
    "uploaded": "视频已上传，正在排队等待转码…",
    "processing": "视频正在转码处理，请稍候…（可以离开本页，处理会在后台继续）",
    "ready": "视频已就绪",
    "failed": "视频处理失败",
    "replaced": "视频已被新上传的视频替换",
    "removed": "已删除",
}
