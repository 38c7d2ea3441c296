"""Variant B: the blob's commit syncs its folder after the rename, as it did before
session 11, while the model runs beside it."""

from __future__ import annotations

from ab_hooks import taking_b

from imagetag.adapters import blobs_fs

commit_now = blobs_fs.StagedFile.commit_now


def commit_now_then_sync(self: blobs_fs.StagedFile) -> None:
    commit_now(self)
    if taking_b():
        blobs_fs._sync_directory(self._target.parent)


blobs_fs.StagedFile.commit_now = commit_now_then_sync  # type: ignore[method-assign]
