"""``posetrack batch --engine ray``: the clips of a batch spread over the workers of a Ray cluster.

One worker (a Ray actor) per GPU, or per ``cpus_per_worker`` cores where there is no GPU, loads
the models once and tracks whole clips (tracking is sequential in time, so a clip is never
split) with ``run.run_job``, the same per-clip function as the built-in engine: the outputs hold
the same tracks, written atomically by the worker that tracked the clip. The driver hands out the
clips longest first, one at a time to whichever worker is free, so one long clip does not finish
last alone.

Nothing is lost and nothing is done twice:

* a worker that dies during a clip (its process killed, its node lost) is replaced and the clip
  goes to another worker, at most ``retries`` times; then the clip is reported failed with the
  reason;
* a clip that fails for its own reasons (a corrupt video) is reported and the others go on;
* a killed driver takes its workers with it (Ray ends the actors of a job whose driver is gone);
  no output is partial, and the same command resumes: finished clips are skipped, temporary
  files left by the killed run are removed;
* a worker skips a clip whose output already exists.

On a cluster, clips and outputs must be in a folder every node mounts at the same path: before
any work, a task on every node checks that it sees the inputs and writes a probe file into the
output folder, which the driver must see; if not, the batch stops with one line saying so.

Ray is imported only when this engine runs (``pip install 'posetrack[ray]'``).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .checks import setting, validate
from .errors import PosetrackError
from .run import (BatchReport, ClipJob, FrameRange, RunSettings, failure_reason, load_models,
                  plan_batch, run_job)

log = logging.getLogger(__name__)

DEFAULT_CPUS_PER_WORKER = 1  # see README "Many machines": 2 one-core workers beat 1 two-core worker
PROBE_PREFIX = ".posetrack-probe-"


@dataclass(frozen=True)
class RayConfig:
    """Where and how many workers run (``posetrack batch --engine ray``)."""

    address: str | None = setting(None, (
        "The Ray cluster to join: 'auto' (the one started on this machine with `ray start`) or "
        "the head's HOST:PORT. None: start Ray on this machine alone, with all its GPUs and "
        "cores, and stop it at the end."))
    workers: int | None = setting(None, (
        "Number of workers, each with its own copy of the models. None: as many as the "
        "cluster's GPUs (or cores) allow, at most one per clip."), low=1)
    gpus_per_worker: float = setting(1.0, (
        "GPUs each worker holds. Below 1 puts several workers on a GPU (0.5: two), which keeps "
        "the GPU busy while a worker decodes or tracks, at the cost of GPU memory."),
        low=0.0, low_open=True)
    cpus_per_worker: int | None = setting(None, (
        "Cores each worker holds and uses as threads. Without GPUs: more cores per worker = "
        "fewer workers, each faster on its clip; fewer = more clips at once, more memory. "
        f"None: {DEFAULT_CPUS_PER_WORKER} (measured best for throughput), 1 beside a GPU."), low=1)
    retries: int = setting(2, (
        "How often a clip whose worker died goes to another worker before it is reported "
        "failed. Higher: survives more crashes; a clip that crashes every worker costs that "
        "many worker restarts."), low=0)

    def __post_init__(self):
        validate(self)


def _import_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    try:
        import ray
    except ImportError:
        raise PosetrackError("--engine ray needs Ray: pip install 'posetrack[ray]'") from None
    return ray


# ---------------------------------------------------------------------------------------------
# The worker


class ClipWorker:
    """A Ray actor: loads the models once, then tracks whole clips with ``run.run_job``.

    Runs methods in two threads, so the driver can read the frame count (``frames_done``) while
    a clip is being tracked. A failure to load the models is kept and reported by ``ready``,
    not raised, so the driver can stop with its one-line reason.
    """

    def __init__(self, settings: RunSettings, threads: int, load=None):
        import socket

        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        self.host = socket.gethostname()
        self.settings = settings
        self.frames = 0
        self.error = None
        try:
            self.models = (load or load_models)(settings)
        except Exception as err:  # reported by ready(): the batch cannot run at all
            self.models = None
            self.error = failure_reason(err)

    def ready(self) -> tuple[str, str, str | None]:
        """``(Ray node id, "host pid", error loading the models or None)``."""
        import ray

        return ray.get_runtime_context().get_node_id(), f"{self.host} pid {os.getpid()}", self.error

    def frames_done(self) -> int:
        return self.frames

    def track(self, job: ClipJob):
        def count():
            self.frames += 1
        return run_job(job, self.models, self.settings, progress=False, on_frame=count)


def _probe_node(out_dir: str, probe_name: str, inputs: list[str]) -> tuple[str, list[str], str | None]:
    """On one node: which inputs it cannot see, and the error writing the probe (or None)."""
    import socket

    missing = [p for p in inputs if not os.path.exists(p)]
    try:
        Path(out_dir, probe_name).write_text(socket.gethostname(), encoding="utf-8")
        error = None
    except OSError as err:
        error = err.strerror or str(err)
    return socket.gethostname(), missing, error


# ---------------------------------------------------------------------------------------------
# The driver


def run_batch_ray(clips_dir, out_dir, settings: RunSettings = RunSettings(),
                  config: RayConfig = RayConfig(), *, annotations_dir=None,
                  out_format: str | None = None, progress: bool = True, on_clip=None,
                  render_dir=None, frames: FrameRange = FrameRange(), load=None) -> BatchReport:
    """Track every clip of ``clips_dir`` into ``out_dir`` on Ray workers; the same outputs,
    skipping and report as ``run.run_batch``; ``report.placed`` gives the Ray node of each clip.

    Joins the Ray instance this process is already connected to, else ``config.address``, else
    starts one on this machine (shut down at the end).

    Args:
        annotations_dir, out_format, render_dir, frames: as for ``run.run_batch``.
        load: ``load(settings) -> run.Models`` run once in each worker; default
            ``run.load_models``. (Tests pass one that injects faults.)
    """
    ray = _import_ray()
    settings = _absolute_paths(settings)
    clips_dir, out_dir = Path(clips_dir).resolve(), Path(out_dir).resolve()
    annotations_dir = None if annotations_dir is None else str(Path(annotations_dir).resolve())
    render_dir = None if render_dir is None else Path(render_dir).resolve()
    jobs, report = plan_batch(clips_dir, out_dir, settings, annotations_dir=annotations_dir,
                              out_format=out_format, render_dir=render_dir, frames=frames)
    if not jobs:
        return report
    from .video import count_frames

    lengths = {job.name: count_frames(job.clip) for job in jobs}
    jobs.sort(key=lambda job: -lengths[job.name])  # stable: equal lengths stay in name order

    started = not ray.is_initialized()
    if started:
        _connect(ray, config.address)
    actors = []
    try:
        inputs = [str(clips_dir)] + [p for p in (settings.detection.detections, annotations_dir) if p]
        for folder in dict.fromkeys(f for f in (out_dir, render_dir) if f is not None):
            check_shared_folder(folder, inputs, _run_on_every_node(ray))
        plan = _worker_plan(ray, settings, config, len(jobs))
        driver = _Driver(ray, plan, settings, config, load, progress, on_clip, report, lengths)
        actors = driver.actors
        driver.run(jobs)
    except BaseException:
        for actor in actors:  # mid-clip: stop them now (a rerun cleans up after them)
            ray.kill(actor)
        raise
    finally:
        for actor in actors:  # idle by now: let them exit
            actor.__ray_terminate__.remote()
        if started:
            ray.shutdown()
    return report


def _connect(ray, address: str | None) -> None:
    if address is None:
        # A new Ray instance of this machine alone (address "local": never one that `ray start`
        # or another program left running), no dashboard (it would listen on a port and start
        # more processes), the workers' logs shown here.
        ray.init(address="local", include_dashboard=False, log_to_driver=True,
                 configure_logging=False)
        return
    try:
        ray.init(address=address, log_to_driver=True, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PosetrackError(f"--address {address}: cannot join the Ray cluster ({first})") from None


def _absolute_paths(settings: RunSettings) -> RunSettings:
    """Paths resolved on the driver: workers do not share its working directory."""
    def absolute(value):
        return str(Path(value).resolve()) if value is not None and Path(value).exists() else value

    models = dataclasses.replace(settings.models, pose_model=absolute(settings.models.pose_model),
                                 detector=absolute(settings.models.detector),
                                 weights_dir=absolute(settings.models.weights_dir))
    detection = dataclasses.replace(settings.detection,
                                    detections=absolute(settings.detection.detections))
    return dataclasses.replace(settings, models=models, detection=detection)


def _run_on_every_node(ray):
    """``probe(*args) -> [result per alive node]``: ``_probe_node`` as a task pinned to each node
    (no CPU reserved, so it runs even while the node is busy)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(_probe_node)

    def probe(*args):
        nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
        return ray.get([task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                        .remote(*args) for node in nodes])
    return probe


def check_shared_folder(out_dir, inputs: list[str], run_on_every_node) -> None:
    """Stop unless every node sees ``inputs`` and shares ``out_dir`` with this process.

    ``run_on_every_node(out_dir, probe_name, inputs)`` runs ``_probe_node`` on each node and
    returns their answers; each node writes ``out_dir/<probe_name>``, which must then be
    visible here. Probe files are removed, also those of an earlier run that was killed.
    """
    out_dir = Path(out_dir)
    for stale in out_dir.glob(PROBE_PREFIX + "*"):
        if time.time() - stale.stat().st_mtime > 600:  # older than any probe still being checked
            stale.unlink(missing_ok=True)
    probe_name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        for host, missing, error in run_on_every_node(str(out_dir), probe_name, inputs):
            if missing:
                raise PosetrackError(f"{missing[0]}: not found on the Ray node {host}; on a cluster, "
                                     "clips and outputs must be on a filesystem every node mounts at "
                                     "the same path")
            if error is not None:
                raise PosetrackError(f"{out_dir}: the Ray node {host} cannot write there ({error})")
            if not (out_dir / probe_name).is_file():
                raise PosetrackError(f"{out_dir}: not shared with the Ray node {host} (a file it wrote "
                                     "there is not visible here); on a cluster, clips and outputs must "
                                     "be on a filesystem every node mounts at the same path")
    finally:
        (out_dir / probe_name).unlink(missing_ok=True)


@dataclass(frozen=True)
class _WorkerPlan:
    count: int
    gpus: float  # per worker
    cpus: int  # per worker, also its thread count
    device: str  # what the worker passes to load_models


def _worker_plan(ray, settings: RunSettings, config: RayConfig, clips: int) -> _WorkerPlan:
    """How many workers, with which resources: GPUs when the device asks for them (or is
    'auto' and the cluster has some), else cores."""
    resources = ray.cluster_resources()
    total_gpus, total_cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    device = settings.models.device
    if device.startswith("cuda:"):
        raise PosetrackError(f"--device {device}: with --engine ray each worker gets its own GPU; "
                             "use --device cuda or auto")
    use_gpus = device == "cuda" or (device == "auto" and total_gpus > 0)
    if use_gpus:
        if total_gpus <= 0:
            raise PosetrackError("--device cuda: the Ray cluster has no GPU")
        cpus = config.cpus_per_worker or 1
        fit = int(total_gpus / config.gpus_per_worker + 1e-9)
        gpus, device = config.gpus_per_worker, "cuda"  # Ray sets CUDA_VISIBLE_DEVICES per worker
    else:
        cpus = config.cpus_per_worker or DEFAULT_CPUS_PER_WORKER
        fit = int(total_cpus // cpus)
        gpus, device = 0.0, "cpu"
    if fit < 1:
        what = f"{config.gpus_per_worker:g} GPU" if use_gpus else f"{cpus} cores"
        raise PosetrackError(f"the Ray cluster ({total_gpus:g} GPUs, {total_cpus:g} cores) has no "
                             f"room for one worker of {what}")
    count = config.workers or fit
    if count > fit:
        log.warning("--workers %d: the cluster has room for %d; starting %d", count, fit, fit)
        count = fit
    count = min(count, clips)
    log.info("%d Ray workers, each with %s and %d cores", count,
             f"{gpus:g} GPU" if gpus else "no GPU", cpus)
    return _WorkerPlan(count, gpus, cpus, device)


class _Driver:
    """The scheduling loop: workers start, get one clip at a time, are replaced when they die."""

    def __init__(self, ray, plan: _WorkerPlan, settings, config, load, progress, on_clip, report,
                 lengths):
        self.ray, self.plan, self.config, self.load = ray, plan, config, load
        self.settings = dataclasses.replace(
            settings, models=dataclasses.replace(settings.models, device=plan.device))
        self.on_clip, self.report, self.lengths = on_clip, report, lengths
        self.actor_class = ray.remote(ClipWorker).options(
            num_cpus=plan.cpus, num_gpus=plan.gpus, max_concurrency=2, max_restarts=0)
        self.actors = []  # every actor started (all killed at the end)
        self.starting = {}  # ready() ref -> actor
        self.free = []  # (actor, "host pid", node id)
        self.busy = {}  # track() ref -> (actor, "host pid", node id, job)
        self.polls = {}  # frames_done() ref -> the track() ref it counts for
        self.last_poll = self.last_shown = 0.0
        self.live_frames = {}  # actor -> frames counted so far on it
        self.attempts = collections.Counter()  # clip name -> worker deaths while tracking it
        self.startup_deaths = 0
        self.frames_done = 0
        self.start = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=len(lengths) + len(report.skipped), unit="clip", desc="batch")
        for _ in range(plan.count):
            self._start_worker()

    def _start_worker(self) -> None:
        actor = self.actor_class.remote(self.settings, self.plan.cpus, self.load)
        self.actors.append(actor)
        self.starting[actor.ready.remote()] = actor

    def run(self, jobs: list[ClipJob]) -> None:
        queue = collections.deque(jobs)
        try:
            while queue or self.busy:
                while self.free and queue:
                    actor, label, node = self.free.pop()
                    job = queue.popleft()
                    self.busy[actor.track.remote(job)] = (actor, label, node, job)
                    self.live_frames[actor] = 0
                if not self.busy and not self.starting:
                    raise PosetrackError("no Ray worker is left to track the remaining clips")
                self._poll_frames()
                waiting = list(self.busy) + list(self.starting) + list(self.polls)
                ready, _ = self.ray.wait(waiting, num_returns=1, timeout=1.0)
                for ref in ready:
                    if ref in self.starting:
                        self._worker_started(ref)
                    elif ref in self.busy:
                        self._clip_returned(ref, queue)
                    elif ref in self.polls:
                        track_ref = self.polls.pop(ref)
                        try:
                            frames = self.ray.get(ref)
                        except self.ray.exceptions.RayError:
                            continue  # the worker died; _clip_returned handles it
                        if track_ref in self.busy:  # not a count from an earlier clip
                            self.live_frames[self.busy[track_ref][0]] = frames
                self._show()
        finally:
            if self.bar is not None:
                self.bar.close()
        seconds = time.perf_counter() - self.start
        log.info("Ray engine: %d frames in %.1f s, %.2f frames/s over %d workers", self.frames_done,
                 seconds, self.frames_done / max(seconds, 1e-9), self.plan.count)

    def _worker_started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            node, label, error = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as err:
            self.startup_deaths += 1
            if self.startup_deaths > self.plan.count + self.config.retries:
                raise PosetrackError(f"Ray workers keep dying while loading the models "
                                     f"({_first_line(err)})") from None
            log.warning("a Ray worker died while loading the models; starting another")
            self._start_worker()
            return
        if error is not None:
            raise PosetrackError(f"a Ray worker ({label}) could not load the models: {error}")
        self.free.append((actor, label, node))

    def _clip_returned(self, ref, queue) -> None:
        actor, label, node, job = self.busy.pop(ref)
        self.live_frames.pop(actor, None)
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as err:
            self.attempts[job.name] += 1
            reason = _first_line(err)
            if self.attempts[job.name] > self.config.retries:
                log.error("%s failed: its worker died %d times (last: %s)", job.name,
                          self.attempts[job.name], reason)
                self.report.failed.append((job.name, f"the Ray worker tracking it died "
                                                     f"{self.attempts[job.name]} times ({reason})"))
            else:
                log.warning("%s: its worker %s died (%s); retrying it on another worker",
                            job.name, label, reason)
                queue.appendleft(job)
            if queue:
                self._start_worker()
            return
        except self.ray.exceptions.RayError as err:  # run_job raised past its own handling
            self.report.failed.append((job.name, _first_line(err)))
        else:
            self.report.placed[job.name] = node
            if result.summary is not None:
                self.frames_done += result.summary.frames
            self.report.add(result, self.on_clip)
        self.free.append((actor, label, node))

    def _poll_frames(self) -> None:
        """Ask each busy worker for its frame count, at most once a second."""
        if time.perf_counter() - self.last_poll < 1.0:
            return
        self.last_poll = time.perf_counter()
        polled = set(self.polls.values())
        for track_ref, (actor, *_) in self.busy.items():
            if track_ref not in polled:
                self.polls[actor.frames_done.remote()] = track_ref

    def _show(self) -> None:
        if self.bar is None:
            return
        report = self.report
        frames = self.frames_done + sum(self.live_frames.values())
        seconds = time.perf_counter() - self.start
        self.bar.n = len(report.done) + len(report.skipped) + len(report.failed)
        self.bar.set_postfix_str(f"done {len(report.done)}, skipped {len(report.skipped)}, failed "
                                 f"{len(report.failed)}, {frames / max(seconds, 1e-9):.2f} frames/s "
                                 f"over {len(self.busy)} workers", refresh=False)
        if time.perf_counter() - self.last_shown >= 1.0:
            self.last_shown = time.perf_counter()
            self.bar.refresh()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
