"""Stage manifests: skip on an unchanged fingerprint, re-run and clear on a changed one."""

import importlib.metadata
import json
import platform

from mww_core.stages import run_stage


def test_skip_and_rerun(tmp_path):
    calls = []

    def compute(d):
        calls.append(1)
        (d / "out.txt").write_text("x")
        return {"outputs": {"out": str(d / "out.txt")}, "metrics": {"n": len(calls)}}

    stage = tmp_path / "s"
    first = run_stage(stage, "s", "fp1", compute)
    again = run_stage(stage, "s", "fp1", compute)
    assert len(calls) == 1 and again.skipped and again.metrics == first.metrics
    (stage / "out.txt").unlink()  # a missing output is not trusted
    run_stage(stage, "s", "fp1", compute)
    assert len(calls) == 2
    (stage / "stale.txt").write_text("old")
    run_stage(stage, "s", "fp2", compute)
    assert len(calls) == 3 and not (stage / "stale.txt").exists()


def test_interrupted_stage_keeps_its_folder(tmp_path):
    stage = tmp_path / "s"

    def crash(d):
        (d / "checkpoint").write_text("step 5")
        raise RuntimeError("killed")

    try:
        run_stage(stage, "s", "fp", crash)
    except RuntimeError:
        pass
    seen = []
    run_stage(stage, "s", "fp", lambda d: seen.append((d / "checkpoint").read_text()) or {})
    assert seen == ["step 5"]


def test_damaged_output_is_not_trusted(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    calls = []

    def compute(d):
        calls.append(1)
        pq.write_table(pa.table({"x": [1, 2, 3]}), d / "out.parquet")
        return {"outputs": {"shard": str(d / "out.parquet")}}

    stage = tmp_path / "s"
    run_stage(stage, "s", "fp", compute)
    shard = stage / "out.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])  # a torn write that kept its name
    again = run_stage(stage, "s", "fp", compute)
    assert len(calls) == 2 and not again.skipped
    assert pq.read_table(shard).num_rows == 3


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from mww_core.atomic import atomic_write_text

    path = tmp_path / "model.json"
    atomic_write_text(path, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0600


def test_file_hashes_follow_content_not_modification_time(tmp_path):
    import os

    from mww_core.stages import FileHashes

    clip = tmp_path / "a.wav"
    clip.write_bytes(b"same bytes")
    memo = FileHashes(tmp_path / "memo" / "hashes.json")
    first = memo.digest(clip)
    os.utime(clip, (1, 1))  # a copy: new modification time, same bytes
    assert memo.digest(clip) == first
    clip.write_bytes(b"other byte")  # same size, new content
    assert memo.digest(clip) != first
    memo.save()
    assert FileHashes(memo.path).digest(clip) == memo.digest(clip)  # read back from the memo


def test_a_stage_records_the_package_versions_it_ran_with_and_old_records_still_load(tmp_path):
    def compute(d):
        (d / "out.txt").write_text("x")
        return {"outputs": {"out": str(d / "out.txt")}}

    stage = tmp_path / "s"
    record = run_stage(stage, "s", "fp1", compute)
    saved = json.loads((stage / "stage.json").read_text())["versions"]
    assert saved == record.versions
    assert saved["python"] == platform.python_version()
    assert saved["numpy"] == importlib.metadata.version("numpy")
    assert saved["keras"] == importlib.metadata.version("keras")
    # A stage.json written before versions were recorded is still a finished stage.
    old = json.loads((stage / "stage.json").read_text())
    del old["versions"]
    (stage / "stage.json").write_text(json.dumps(old))
    again = run_stage(stage, "s", "fp1", compute)
    assert again.skipped and again.versions == {}
