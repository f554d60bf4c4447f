"""Tests of batch input: BatchRequest, fingerprints, and the JSONL / plain-text readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttapi_async.batch import BatchInputError, BatchRequest, read_requests


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_file_numbers_prompts_and_skips_comments(tmp_path: Path) -> None:
    """A plain-text file gives one request per prompt, ids 00001.., comments and blanks skipped."""
    path = write(tmp_path, "p.txt", "# header\na cat\n\n  a dog  \n")
    requests = list(read_requests(path))
    assert [(r.id, r.kind, r.params["prompt"]) for r in requests] == [
        ("00001", "gpt4o", "a cat"),
        ("00002", "gpt4o", "a dog"),
    ]


def test_defaults_apply_only_to_kinds_that_take_them(tmp_path: Path) -> None:
    """--model is added to generate requests but not to gpt4o ones, which take no model."""
    path = write(tmp_path, "p.txt", "a cat\n")
    gen = next(read_requests(path, kind="generate", defaults={"model": "gpt-image-1"}))
    job = next(read_requests(path, kind="gpt4o", defaults={"model": "gpt-image-1"}))
    assert gen.params == {"prompt": "a cat", "model": "gpt-image-1"}
    assert job.params == {"prompt": "a cat"}


def test_jsonl_reads_flat_and_nested_params(tmp_path: Path) -> None:
    """JSONL lines may give parameters flat or under "params"; a line's own values win."""
    path = write(
        tmp_path,
        "r.jsonl",
        '{"id": "a", "kind": "generate", "prompt": "x", "size": "1024x1024"}\n'
        '{"id": 7, "kind": "gpt", "params": {"prompt": "y", "model": "gpt-image-2"}}\n',
    )
    a, b = read_requests(path, defaults={"size": "512x512"})
    assert (a.id, a.kind, a.params) == ("a", "generate", {"prompt": "x", "size": "1024x1024"})
    assert (b.id, b.kind, b.params["model"]) == ("7", "gpt", "gpt-image-2")


def test_jsonl_error_names_the_line(tmp_path: Path) -> None:
    """A line that is not JSON is reported with its file and line number."""
    path = write(tmp_path, "r.jsonl", '{"prompt": "ok"}\n{nope\n')
    with pytest.raises(BatchInputError, match=r"r\.jsonl:2: not valid JSON"):
        list(read_requests(path))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    """Two lines with one id would share a journal row and a file name: refused."""
    path = write(tmp_path, "r.jsonl", '{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n')
    with pytest.raises(BatchInputError, match="already used on line 1"):
        list(read_requests(path))


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    """A kind outside generate/edit/dalle3/gpt4o/gpt is an input error, not a failed item."""
    path = write(tmp_path, "r.jsonl", '{"kind": "video", "prompt": "a"}\n')
    with pytest.raises(BatchInputError, match="unknown kind 'video'"):
        list(read_requests(path))


def test_missing_prompt_is_refused(tmp_path: Path) -> None:
    """Every request needs a non-empty prompt."""
    path = write(tmp_path, "r.jsonl", '{"id": "a", "size": "1024x1024"}\n')
    with pytest.raises(BatchInputError, match="prompt is required"):
        list(read_requests(path))


def test_edit_image_paths_resolve_against_the_input_file(tmp_path: Path) -> None:
    """A relative image path in an edit line is read relative to the input file's folder."""
    path = write(tmp_path, "r.jsonl", '{"kind": "edit", "prompt": "a", "image": ["in.png"]}\n')
    (request,) = read_requests(path)
    assert request.params["image"] == [str(tmp_path / "in.png")]


def test_dalle3_gets_the_required_size(tmp_path: Path) -> None:
    """The legacy DALL-E 3 endpoint requires a size: 1024x1024 unless one is given."""
    path = write(tmp_path, "p.txt", "a cat\n")
    (request,) = read_requests(path, kind="dalle3")
    assert request.params["size"] == "1024x1024"


def test_fingerprint_ignores_key_order() -> None:
    """The same parameters in another order are the same request."""
    a = BatchRequest("1", "generate", {"prompt": "x", "size": "1024x1024"})
    b = BatchRequest("1", "generate", {"size": "1024x1024", "prompt": "x"})
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_changes_with_kind_or_params() -> None:
    """Another kind or another parameter value is another request."""
    base = BatchRequest("1", "generate", {"prompt": "x"})
    assert base.fingerprint() != BatchRequest("1", "gpt4o", {"prompt": "x"}).fingerprint()
    assert base.fingerprint() != BatchRequest("1", "generate", {"prompt": "y"}).fingerprint()


def test_batch_public_names_are_sorted_and_resolve() -> None:
    """ttapi_async.batch exports a sorted __all__ (constants, classes, functions) that resolves."""
    import ttapi_async.batch as batch

    def order(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert batch.__all__ == sorted(batch.__all__, key=order)
    assert all(hasattr(batch, name) for name in batch.__all__)


def test_utf8_bom_is_not_part_of_the_first_prompt(tmp_path: Path) -> None:
    """A BOM at the start of a .txt file (as Windows editors write) is stripped."""
    path = tmp_path / "p.txt"
    path.write_bytes(b"\xef\xbb\xbfa cat\na dog\n")
    assert [r.params["prompt"] for r in read_requests(path)] == ["a cat", "a dog"]


def test_utf8_bom_before_jsonl_is_stripped(tmp_path: Path) -> None:
    """A BOM before the first JSON line does not make it invalid JSON."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "prompt": "x"}\n')
    assert [r.id for r in read_requests(path)] == ["a"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_input_without_requests_is_an_error(tmp_path: Path, text: str) -> None:
    """An empty file (or one of blanks and comments) is an error, not a batch of nothing."""
    path = write(tmp_path, "p.txt", text)
    with pytest.raises(BatchInputError, match="holds no request"):
        list(read_requests(path))


def test_non_utf8_input_names_its_line(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is one error naming the file's line and the byte."""
    path = tmp_path / "p.txt"
    path.write_bytes(b"a cat\ncaf\xe9 au lait\n")
    with pytest.raises(BatchInputError, match=r"p\.txt:2: not UTF-8 text \(byte 0xe9"):
        list(read_requests(path))


@pytest.mark.parametrize(
    "line", ['{"id": "\\udc80", "prompt": "x"}', '{"id": "a", "prompt": "bad \\ud800 text"}']
)
def test_a_lone_surrogate_names_its_line(tmp_path: Path, line: str) -> None:
    """A lone surrogate in an id or a prompt is one error naming the input line."""
    path = write(tmp_path, "r.jsonl", '{"id": "ok", "prompt": "fine"}\n' + line + "\n")
    with pytest.raises(BatchInputError, match=r"r\.jsonl:2: .*lone surrogate"):
        list(read_requests(path))
