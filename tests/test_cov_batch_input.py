"""Reading batch input: the refusals and shapes test_batch_input leaves out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttapi_async.batch import BatchInputError, BatchRequest, read_requests


def write(path: Path, *objs: object) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def test_a_request_of_an_unknown_kind_is_refused() -> None:
    """BatchRequest with a kind nobody knows raises BatchInputError."""
    with pytest.raises(BatchInputError, match="unknown kind"):
        BatchRequest("a", "video", {"prompt": "p"})  # type: ignore[arg-type]


def test_a_request_id_must_be_a_string() -> None:
    """BatchRequest with a number for an id raises BatchInputError."""
    with pytest.raises(BatchInputError, match="an id must be a string"):
        BatchRequest(7, "gpt4o", {"prompt": "p"})  # type: ignore[arg-type]


def test_family_and_is_job_follow_the_kind() -> None:
    """A gpt4o request is a job of the gpt4o family; a generate request is neither."""
    job = BatchRequest("a", "gpt4o", {"prompt": "p"})
    image = BatchRequest("b", "generate", {"prompt": "p"})
    assert (job.family, job.is_job) == ("gpt4o", True)
    assert (image.family, image.is_job) == ("images", False)


def test_an_unknown_default_kind_is_refused(tmp_path: Path) -> None:
    """read_requests(kind=...) of an unknown kind raises before reading anything."""
    with pytest.raises(BatchInputError, match="unknown kind"):
        list(read_requests(tmp_path / "missing.txt", kind="video"))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    """A path that is no file raises BatchInputError naming it."""
    with pytest.raises(BatchInputError, match="does not exist"):
        list(read_requests(tmp_path / "missing.txt"))


def test_a_file_without_a_known_suffix_is_sniffed(tmp_path: Path) -> None:
    """A file named neither .jsonl nor .txt is JSONL when its first request line is an object."""
    jsonl = tmp_path / "requests"
    jsonl.write_text("# requests\n\n" + json.dumps({"id": "x", "prompt": "a fox"}) + "\n")
    assert [r.id for r in read_requests(jsonl)] == ["x"]
    text = tmp_path / "prompts"
    text.write_text("a fox\n")
    assert [r.params["prompt"] for r in read_requests(text)] == ["a fox"]


def test_a_file_of_only_comments_is_empty(tmp_path: Path) -> None:
    """A suffixless file holding only comments is read as text, and holds no request."""
    path = tmp_path / "requests"
    path.write_text("# nothing yet\n")
    with pytest.raises(BatchInputError, match="holds no request"):
        list(read_requests(path))


def test_comments_in_jsonl_are_skipped_and_a_non_object_is_refused(tmp_path: Path) -> None:
    """In JSONL a comment line is skipped, and a line that is a JSON list is refused."""
    path = tmp_path / "r.jsonl"
    path.write_text("# a comment\n" + json.dumps(["a fox"]) + "\n")
    with pytest.raises(BatchInputError, match=":2: expected a JSON object"):
        list(read_requests(path))


def test_ids_that_are_numbers_become_strings_and_others_are_refused(tmp_path: Path) -> None:
    """A numeric id is read as its text; an id that is a list is refused."""
    ok = write(tmp_path / "ok.jsonl", {"id": 12, "prompt": "p"})
    assert [r.id for r in read_requests(ok)] == ["12"]
    bad = write(tmp_path / "bad.jsonl", {"id": [1], "prompt": "p"})
    with pytest.raises(BatchInputError, match="id must be a string or a number"):
        list(read_requests(bad))


def test_params_beside_other_keys_are_refused(tmp_path: Path) -> None:
    """A line with "params" and another parameter key is refused (which one would win?)."""
    path = write(tmp_path / "r.jsonl", {"id": "a", "params": {"prompt": "p"}, "size": "1x1"})
    with pytest.raises(BatchInputError, match='"params" must be an object'):
        list(read_requests(path))


def test_edit_images_resolve_relative_to_the_input_file(tmp_path: Path) -> None:
    """An edit's relative image paths (in a list) resolve against the input file's folder;
    URLs and absolute paths are kept as given."""
    path = write(
        tmp_path / "r.jsonl",
        {
            "id": "a",
            "kind": "edit",
            "prompt": "p",
            "image": ["cat.png", "https://example.com/d.png", "/abs/e.png"],
            "mask": "mask.png",
        },
    )
    (request,) = read_requests(path)
    assert request.params["image"] == [
        str(tmp_path / "cat.png"),
        "https://example.com/d.png",
        "/abs/e.png",
    ]
    assert request.params["mask"] == str(tmp_path / "mask.png")
