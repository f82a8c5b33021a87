"""Turn a job's images into data URLs: inline images as they are, ``s3://`` images read from the input location."""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

from botocore.exceptions import ClientError

from worker.job import IMAGE_MEDIA_TYPES, ImageSource

# NOTE: bedrock-mantle's per-image size limit for Gemma 4 is not documented where this was written;
# 10 MiB only keeps one job from filling the function's memory.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_MISSING_OBJECT_CODES = ("NoSuchKey", "404", "NotFound")


class InvalidImageError(ValueError):
    """Raised for an image the job cannot use: a missing object, a non-image type or an oversized file.

    ``location`` is the job field, such as ``images[1]``. The job is invalid, not retried.
    """

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(reason)
        self.location = location
        self.reason = reason


class ImageLoader:
    """Reads ``s3://`` images with GetObject. Other S3 errors (throttling, access) propagate, so the job is retried."""

    def __init__(self, s3_client: Any, max_bytes: int = MAX_IMAGE_BYTES) -> None:
        self._s3_client = s3_client
        self._max_bytes = max_bytes

    def data_urls(self, images: tuple[ImageSource, ...]) -> list[str]:
        """Return one data URL per image, in the job's order."""
        return [self._data_url(f"images[{index}]", image) for index, image in enumerate(images)]

    def _data_url(self, location: str, image: ImageSource) -> str:
        if image.data is not None:
            return f"data:{image.media_type};base64,{image.data}"
        uri = image.s3_uri
        try:
            response = self._s3_client.get_object(Bucket=image.s3_bucket, Key=image.s3_key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_OBJECT_CODES:
                raise InvalidImageError(
                    location, f"field '{location}' names {uri}, which does not exist; upload the image and send the job again"
                ) from None
            raise
        body = response["Body"]
        try:
            data = body.read(self._max_bytes + 1)
        finally:
            body.close()
        if len(data) > self._max_bytes:
            raise InvalidImageError(
                location,
                f"field '{location}' names {uri}, which is larger than {self._max_bytes} bytes; send a smaller image",
            )
        media_type = _media_type(response.get("ContentType"), image.s3_key or "")
        if media_type is None:
            raise InvalidImageError(
                location,
                f"field '{location}' names {uri}, which is not a {', '.join(IMAGE_MEDIA_TYPES)} image by its "
                "Content-Type or file extension; upload it with one of those types",
            )
        return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def _media_type(content_type: str | None, key: str) -> str | None:
    """Return the object's image type from its Content-Type, or from the key's extension when that is generic."""
    if content_type:
        base = content_type.split(";")[0].strip().lower()
        if base in IMAGE_MEDIA_TYPES:
            return base
    guessed, _ = mimetypes.guess_type(key)
    return guessed if guessed in IMAGE_MEDIA_TYPES else None
