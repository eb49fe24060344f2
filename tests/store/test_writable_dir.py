"""ensure_writable_dir is safe to call from many threads at once on one folder (job creates do)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tuneforge.settings import ensure_writable_dir


def test_concurrent_probes_of_one_folder_all_succeed_and_leave_nothing(tmp_path):
    folder = tmp_path / "files"

    def probe(_: int):
        return ensure_writable_dir(folder, "The files folder")

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(probe, range(400)))

    assert results == [folder] * 400
    assert list(folder.iterdir()) == []
