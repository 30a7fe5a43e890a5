"""`strongroom keys`: the key pair that signs requests to remote drivers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from strongroom.cli._errors import UserError, one_line_errors


@click.group("keys")
def keys_group() -> None:
    """Manage the key pair that signs requests to remote drivers."""


@keys_group.command("generate")
@click.option(
    "--bits",
    type=click.IntRange(2048, 16384),
    default=4096,
    show_default=True,
    help="RSA modulus size (Humanitec's key registry asks for 4096).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the private key (PKCS#8 PEM) to this file, created with mode 0600.",
)
@click.option(
    "--print-private-key",
    is_flag=True,
    help="Print the private key on stdout instead (for piping into a secret manager).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@one_line_errors
def keys_generate_command(bits: int, out: Path | None, print_private_key: bool, force: bool) -> None:
    """Create an RSA key pair for signing driver requests.

    The public key (PEM) goes to stdout, its SHA-256 fingerprint (the JWT `kid` drivers look keys up by)
    to stderr. Store the private key in a Secret with keys `privateKey` and `organisationID`.
    """
    from strongroom.drivers.signing import (
        generate_private_key,
        private_key_pem,
        public_key_fingerprint,
        public_key_pem,
    )

    if out is None and not print_private_key:
        raise UserError("give --out FILE for the private key, or --print-private-key")
    if out is not None and print_private_key:
        raise UserError("--out and --print-private-key exclude each other")
    key = generate_private_key(bits)
    private = private_key_pem(key)
    if out is not None:
        _write_private(out, private, force=force)
    else:
        sys.stdout.write(private.decode())
    sys.stdout.write(public_key_pem(key).decode())
    sys.stdout.flush()
    if out is not None:
        click.echo(f"private key written to {out} (mode 0600)", err=True)
    click.echo(f"fingerprint (JWT kid): {public_key_fingerprint(key)}", err=True)


def _write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write a private key so that it is never readable by others, not even for a moment."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UserError(f"{path} exists; use --force to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        # An existing file keeps its old mode through O_TRUNC; tighten it before writing the key.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
