"""The one-shot commands: generate, edit, submit, fetch, and the emulator (fake-server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .._capabilities import EDIT_MODELS, GENERATE_MODELS, GPT_JOB_DEFAULT_MODEL, GPT_JOB_MODELS
from ..batch._outputs import save_b64, save_url
from ..resources._base import compact
from ._common import CliError, arun, echo, open_client
from ._params import PARAM, call_params, named, wait_with_progress

__all__ = ["edit", "fake_server", "fetch", "generate", "submit"]


_FAKE_FLAG = click.option("--fake", is_flag=True, help="Use a built-in FakeTTAPI (no key).")
_OUT_DIR = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to save images in.",
)
_NAME = click.option("--name", default="image", show_default=True, help="File name stem.")
_FORCE = click.option(
    "--force", is_flag=True, help="Overwrite files of that name (default: pick a fresh name)."
)
#: What the service generates with when no model is given (OpenAI's images API default).
SERVICE_DEFAULT_MODEL = "dall-e-2"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _fresh_stem(out_dir: Path, name: str, *, force: bool) -> str:
    """Return ``name``'s safe stem, or ``stem-2``, ``stem-3``... if files of it exist."""
    from ..batch._names import safe_stem

    stem = safe_stem(name)
    if force:
        return stem
    for n in range(1, 10_000):
        candidate = stem if n == 1 else f"{stem}-{n}"
        taken = (out_dir / candidate).exists() or any(
            (out_dir / f"{candidate}{suffix}").exists() for suffix in _IMAGE_SUFFIXES
        )
        if not taken:
            return candidate
    raise CliError(f"no free file name for {name!r} in {out_dir}: use --force or --name")


async def _save_response(response: Any, out_dir: Path, stem: str) -> list[Path]:
    images = list(response.data)
    paths = []
    for index, image in enumerate(images):
        if image.b64_json is not None:
            fmt = getattr(response, "output_format", None)
            paths.append(await save_b64(image.b64_json, out_dir, stem, index, len(images), fmt))
        elif image.url:
            paths.append(await save_url(image, image.url, out_dir, stem, index, len(images)))
    return paths


@click.command(short_help="Generate images from a prompt and save them.")
@click.argument("prompt")
@click.option(
    "--model",
    help=f"{', '.join(GENERATE_MODELS)} (default: {SERVICE_DEFAULT_MODEL}, the service's).",
)
@click.option("--size", help="e.g. 1024x1024.")
@click.option("--quality", help="auto, high, medium, low (GPT Image); hd, standard (DALL-E).")
@click.option("-n", "n", type=click.IntRange(1, 10), help="How many images.")
@click.option("--output-format", type=click.Choice(["png", "jpeg", "webp"]))
@click.option("--dalle3", is_flag=True, help="Use the legacy DALL-E 3 endpoint.")
@named("background", "moderation", "output_compression", "style", "response_format", "user")
@PARAM
@_OUT_DIR
@_NAME
@_FORCE
@_FAKE_FLAG
@click.pass_context
def generate(
    ctx: click.Context,
    /,
    prompt: str,
    model: str | None,
    size: str | None,
    quality: str | None,
    n: int | None,
    output_format: str | None,
    dalle3: bool,
    out_dir: Path,
    name: str,
    force: bool,
    fake: bool,
    params: tuple[str, ...],
    **options: Any,
) -> int:
    """Generate images from PROMPT and save them (prints the paths)."""

    stem = _fresh_stem(out_dir, name, force=force)  # chosen before anything is paid for

    async def go() -> list[Path]:
        async with open_client(ctx, fake=fake) as client:
            if dalle3:
                given = compact(size=size or "1024x1024", quality=quality, n=n, **options)
                kwargs = call_params(client.dalle3.generate, params, given)
                response = await client.dalle3.generate(prompt=prompt, **kwargs)
            else:
                given = compact(
                    model=model, size=size, quality=quality, n=n, output_format=output_format
                )
                kwargs = call_params(client.images.generate, params, {**given, **options})
                response = await client.images.generate(prompt=prompt, **kwargs)
            return await _save_response(response, out_dir, stem)

    for path in arun(go()):
        echo(str(path))
    return 0


@click.command(short_help="Edit images following a prompt.")
@click.argument("prompt")
@click.option(
    "-i",
    "--image",
    "images",
    multiple=True,
    required=True,
    help="An image to edit (a path or an https:// URL). Repeatable.",
)
@click.option("--mask", help="PNG whose transparent pixels mark where to edit.")
@click.option("--model", help=f"{', '.join(EDIT_MODELS)}.")
@click.option("--size", help="e.g. 1024x1024.")
@click.option("--quality")
@click.option("-n", "n", type=click.IntRange(1, 10))
@named(
    "background",
    "moderation",
    "input_fidelity",
    "output_compression",
    "output_format",
    "response_format",
    "user",
)
@PARAM
@_OUT_DIR
@_NAME
@_FORCE
@_FAKE_FLAG
@click.pass_context
def edit(
    ctx: click.Context,
    /,
    prompt: str,
    images: tuple[str, ...],
    mask: str | None,
    model: str | None,
    size: str | None,
    quality: str | None,
    n: int | None,
    out_dir: Path,
    name: str,
    force: bool,
    fake: bool,
    params: tuple[str, ...],
    **options: Any,
) -> int:
    """Edit or extend one or more images following PROMPT (prints the saved paths)."""

    stem = _fresh_stem(out_dir, name, force=force)  # chosen before anything is paid for

    async def go() -> list[Path]:
        async with open_client(ctx, fake=fake) as client:
            given = compact(mask=mask, model=model, size=size, quality=quality, n=n, **options)
            kwargs = call_params(client.images.edit, params, given)
            response = await client.images.edit(prompt=prompt, image=list(images), **kwargs)
            return await _save_response(response, out_dir, stem)

    for path in arun(go()):
        echo(str(path))
    return 0


def _family(client: Any, family: str) -> Any:
    resource = getattr(client, family, None)
    if resource is None:
        raise CliError(f"this version of ttapi_async has no {family} job API")
    return resource


def _status_json(status: Any) -> str:
    from .._models import converter

    data = converter.unstructure(status)
    return json.dumps(data, default=str, ensure_ascii=False)


_FAMILY = click.option(
    "--family",
    type=click.Choice(["gpt4o", "gpt"]),
    default="gpt4o",
    show_default=True,
    help="Job family: GPT-4o (/openai/4o-image) or the gpt family (/openai/gpt).",
)


@click.command(short_help="Submit an image job; print its id.")
@click.argument("prompt")
@_FAMILY
@click.option(
    "--model",
    help=f"gpt family: {', '.join(GPT_JOB_MODELS)} (default: {GPT_JOB_DEFAULT_MODEL}).",
)
@click.option("--aspect-ratio", help="gpt-image-2: 1:1, 3:4, 4:3, 16:9, 9:16.")
@click.option("--size", help="gpt-image-2-plus: WxH.")
@click.option("--refer", "refer_images", multiple=True, help="A reference image URL. Repeatable.")
@click.option("--wait", is_flag=True, help="Wait for the job (a progress line) and save its image.")
@named("hook_url")
@PARAM
@_OUT_DIR
@_NAME
@_FORCE
@_FAKE_FLAG
@click.pass_context
def submit(
    ctx: click.Context,
    prompt: str,
    family: str,
    model: str | None,
    aspect_ratio: str | None,
    size: str | None,
    refer_images: tuple[str, ...],
    wait: bool,
    out_dir: Path,
    name: str,
    force: bool,
    fake: bool,
    params: tuple[str, ...],
    hook_url: str | None,
) -> int:
    """Submit an image job for PROMPT; print its id (and, with --wait, the saved path)."""

    async def go() -> None:
        async with open_client(ctx, fake=fake) as client:
            given: dict[str, Any] = {"hook_url": hook_url}
            if refer_images:
                given["refer_images"] = list(refer_images)
            if family == "gpt":
                given.update(compact(model=model, aspect_ratio=aspect_ratio, size=size))
            resource = _family(client, family)
            job = await resource.submit(
                prompt=prompt, **call_params(resource.submit, params, given)
            )
            echo(job.id)
            if wait:
                result = await wait_with_progress(job)
                stem = _fresh_stem(out_dir, name or job.id, force=force)
                path = await save_url(result, result.image_url, out_dir, stem, 0, 1)
                echo(str(path))
            elif fake:
                echo(
                    "note: this job lives in the --fake emulator, which ended with this "
                    "command: nothing can fetch it later (add --wait to save its image)",
                    err=True,
                )

    arun(go())
    return 0


@click.command(short_help="Print a job's status, or wait and save it.")
@click.argument("job_id")
@_FAMILY
@click.option("--wait", is_flag=True, help="Wait until the job ends, then save its image.")
@_OUT_DIR
@click.option("--name", help="File name stem (default: the job id).")
@_FORCE
@click.pass_context
def fetch(
    ctx: click.Context,
    job_id: str,
    family: str,
    wait: bool,
    out_dir: Path,
    name: str | None,
    force: bool,
) -> int:
    """Print a job's status as JSON (with --wait: wait for it and save its image)."""

    async def go() -> None:
        async with open_client(ctx, fake=False) as client:
            resource = _family(client, family)
            if not wait:
                echo(_status_json(await resource.fetch(job_id)))
                return
            result = await resource.resume(job_id)
            stem = _fresh_stem(out_dir, name or job_id, force=force)
            path = await save_url(result, result.image_url, out_dir, stem, 0, 1)
            echo(str(path))

    arun(go())
    return 0


@click.command(
    "fake-server",
    short_help="Run FakeTTAPI, the local emulator.",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def fake_server(args: tuple[str, ...]) -> int:
    """Run FakeTTAPI, the local emulator, until Ctrl-C (--help lists its options)."""
    from ..testing._server_main import main as server_main

    return server_main(list(args), prog="ttapi fake-server")
