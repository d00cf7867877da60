"""``python -m moto.server`` with S3's conditional delete as the service documents it.

S3 takes ``If-Match: *`` on DeleteObject as "the object exists": it deletes a present object
and answers 404 NoSuchKey for a missing one ("How to perform conditional deletes", Amazon S3
user guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
moto 5.2.5 compares ``*`` with the object's ETag as a literal and answers 412 to every present
key, so that an adapter sending what S3 takes needed a HEAD first on moto alone. This entry
point answers ``*`` as S3 does and is otherwise moto's own server, with its arguments.
"""

from __future__ import annotations

from typing import Any

from moto import server
from moto.s3.exceptions import MissingKey
from moto.s3.responses import S3Response
from werkzeug.datastructures import Headers

_moto_delete_object = S3Response.delete_object


def _delete_object(self: Any) -> Any:
    if self.headers.get("If-Match") == "*":
        key_name = self.parse_key_name()
        current = self.backend.get_object(self.bucket_name, key_name)
        if current is None:
            raise MissingKey(key=key_name)
        headers = Headers(self.headers)
        headers["If-Match"] = current.etag
        self.headers = headers
    return _moto_delete_object(self)


S3Response.delete_object = _delete_object  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main()
