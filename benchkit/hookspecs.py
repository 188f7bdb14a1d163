"""The benchkit hook API: what a plugin may implement.

A plugin is a module (or object) with functions named after these hooks, marked with
``@benchkit.hookimpl``, and published in the ``benchkit`` entry-point group::

    [project.entry-points.benchkit]
    my_models = "my_package.plugin"

Every hook receives a ``register`` callable and calls it once per thing it provides. Register
*factories*, never built objects: discovering plugins must not build a model, read a file or
touch a GPU. benchkit checks each registration as it arrives and records which plugin made it,
so an error names the plugin at fault. ``register`` accepts keyword arguments only after the
name and factory; later API versions may add optional ones.

Hooks are called once per process, when the plugin host is built, in the order below.
A hook that raises marks its plugin as failed; the other plugins still load.

Hook API 1.1 added the losses, optimizers and schedules hooks, ``recipes=`` on datasets and
``metrics=`` on models; a plugin written for 1.0 is unaffected by them.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("benchkit")

RegisterFn = Callable[..., None]


# --- where training runs --------------------------------------------------------------------


@hookspec
def benchkit_register_devices(register: RegisterFn) -> None:
    """Register devices a suite can name (``cpu``, ``cuda``, ``mps`` …).

    Call ``register(name, factory, *, description="")`` per device, where
    ``factory(index: int | None) -> benchkit.Device``. The index is ``N`` when a suite writes
    ``name:N`` and ``None`` when it writes ``name``. The factory must succeed on machines that
    lack the hardware; the device then explains itself through ``unavailable_reason()``, and
    benchkit reports its runs as skipped with that reason, never moving them elsewhere.

    :param register: the registration callable described above.
    """


@hookspec
def benchkit_register_precisions(register: RegisterFn) -> None:
    """Register number formats a suite can name (``fp32``, ``fp16``, ``bf16`` …).

    Call ``register(name, factory, *, description="")`` per precision, where
    ``factory() -> benchkit.Precision`` builds a fresh instance for every run (so it may hold
    per-run state such as a gradient scaler). A precision that a device cannot run says why in
    ``unsupported_reason(device)``; its runs are skipped with that reason.

    :param register: the registration callable described above.
    """


@hookspec
def benchkit_register_modes(register: RegisterFn) -> None:
    """Register execution modes a suite can name (``eager``, ``compile``, ``cudagraphs`` …).

    Call ``register(name, factory, *, options=None, description="")`` per mode, where
    ``factory(options: dict) -> benchkit.Mode`` builds a fresh instance for every run (so it
    may hold per-run state: compiled functions, captured graphs, the seconds spent on them).
    ``options`` are the defaults of every option the mode accepts (``{"backend": "inductor"}``);
    a suite's ``mode_options`` table sets them per mode. The factory may raise
    ``benchkit.errors.BenchkitError`` for an option value it cannot use. A mode that cannot
    run on a device or under a precision says why in ``unsupported_reason(device,
    precision)``; its runs are skipped with that reason.

    :param register: the registration callable described above.
    """


# --- how training runs (hook API 1.1) ---------------------------------------------------------


@hookspec
def benchkit_register_losses(register: RegisterFn) -> None:
    """Register losses a recipe can name (``mse``, ``cross_entropy``, ``bce_with_logits`` …).

    Call ``register(name, factory, *, options=None, description="")`` per loss, where
    ``factory(**options)`` returns a callable ``(prediction, target) -> scalar tensor``, the
    mean over the batch (an ``nn.Module`` such as ``nn.BCEWithLogitsLoss()`` qualifies; so does
    the class itself as the factory). ``options`` are the defaults of every option the loss
    accepts; a recipe's ``loss_options`` may set only these keys, with values of the default's
    type. A loss with an ``ignore_index`` option also receives a recipe's ``ignore_index``.
    The factory is called once per run, before training, on the host; the callable runs in the
    precision's autocast context on the device's tensors.

    :param register: the registration callable described above.
    """


@hookspec
def benchkit_register_optimizers(register: RegisterFn) -> None:
    """Register optimizers a recipe can name (``sgd``, ``adam``, ``adamw`` …).

    Call ``register(name, factory, *, options=None, description="")`` per optimizer, where
    ``factory(params, lr, **options) -> torch.optim.Optimizer``. ``lr`` is the recipe's
    learning rate, or ``None`` when the recipe gives none (use the optimizer's own default).
    ``options`` are the defaults of every option the optimizer accepts; a recipe's
    ``optimizer_options`` may set only these keys, with values of the default's type. The
    factory is called once per run, after the model is on the device.

    :param register: the registration callable described above.
    """


@hookspec
def benchkit_register_schedules(register: RegisterFn) -> None:
    """Register learning-rate schedules a recipe can name (``step``, ``cosine`` …).

    Call ``register(name, factory, *, options=None, description="")`` per schedule, where
    ``factory(optimizer, epochs, **options)`` returns a scheduler (anything with a ``step()``
    method, such as a ``torch.optim.lr_scheduler.LRScheduler``) that benchkit steps once at the
    end of every epoch; ``epochs`` is the recipe's. ``options`` are the defaults of every option
    the schedule accepts; a recipe's ``schedule_options`` may set only these keys. With a
    schedule set, each epoch's learning rate (that of the optimizer's first parameter group)
    is written to ``curves.csv``.

    :param register: the registration callable described above.
    """


# --- what is trained --------------------------------------------------------------------------


@hookspec
def benchkit_register_datasets(register: RegisterFn) -> None:
    """Register datasets a suite can name.

    Call ``register(name, factory, *, options=None, recipes=None, description="")`` per
    dataset, where ``factory(options: dict) -> benchkit.Data``. ``options`` are the defaults of
    every option the dataset accepts (``{"path": None, "window": 20}``); a suite's ``options``
    table may set only these keys, with values of the default's type when the default is not
    ``None``. benchkit calls ``torch.manual_seed(seed)`` right before the factory, so random
    draws are reproducible per seed. The factory may raise ``benchkit.errors.BenchkitError``
    with a message for the user (a missing or malformed file).

    ``recipes`` (API 1.1) maps names of models, registered by any plugin, to the
    ``benchkit.Recipe`` they train on this dataset with: the dataset offers itself to them. A
    pairing that the model's own ``datasets`` also names must carry the same recipe; otherwise
    the dataset's plugin fails to load with a message naming both plugins. An offer to a model
    no plugin registered is kept for ``benchkit show`` and otherwise unused.

    :param register: the registration callable described above.
    """


@hookspec
def benchkit_register_models(register: RegisterFn) -> None:
    """Register models and the datasets they can train on.

    Call ``register(name, factory, *, datasets, evaluate=None, options=None, metrics=None,
    description="")`` per model:

    - ``factory(data: benchkit.Data, options: dict) -> torch.nn.Module`` builds the model on
      the CPU in float32 (benchkit moves and casts it). ``data.info`` carries sizes such as the
      number of input features or the vocabulary. benchkit seeds torch right before the call.
    - ``datasets`` maps each dataset name the model fits to its default ``benchkit.Recipe``
      (loss, optimizer, learning rate, epochs, batch size); a suite may override any field.
    - ``evaluate(model, data, context) -> dict[str, float]`` (optional) computes the model's
      quality metrics after training (rollout error, accuracy …). It runs under
      ``torch.no_grad()`` with the model in eval mode; ``data`` is already on the device in
      the run's precision, and ``context.prepare(tensor)`` moves and casts any other tensor.
      A scalar value becomes a column of ``results.csv``; a 1-D tensor or list becomes rows
      of ``series.csv`` (the rollout's predicted values, say).
    - ``options`` are the defaults of the model's own options (hidden sizes …), set from a
      suite's ``model_options`` table.
    - ``metrics`` (API 1.1) declares what the scalars ``evaluate`` returns mean:
      ``{"accuracy": benchkit.Metric(better="higher")}``. ``benchkit compare`` judges a
      declared metric by its direction and kind; an undeclared one by rules read from its name.

    ``factory`` must be a function (or class) that builds the model, not a built
    ``nn.Module``; anything else fails the plugin at load time.

    :param register: the registration callable described above.
    """


# --- how runs are carried out -----------------------------------------------------------------


@hookspec
def benchkit_register_executors(register: RegisterFn) -> None:
    """Register executors: ways ``benchkit run --executor NAME`` carries out a suite's runs
    (``serial``, the default, and ``dask`` are built in).

    Call ``register(name, factory, *, options=None, description="")`` per executor, where
    ``factory(options: dict, context: benchkit.executors.ExecutorContext)`` returns an object
    with a ``name`` and ``results(cases, registry, devices, progress)`` that runs the cases and
    yields each one's :class:`~benchkit.run_result.RunResult` as it finishes, in any order;
    benchkit writes each to the result set as it arrives. ``options`` are the defaults of
    every option the executor takes; ``benchkit run`` sets them from its flags (``--workers``
    sets ``workers``) and refuses a flag the chosen executor does not take. An executor that
    holds resources (a cluster) may also be a context manager: benchkit enters it before the
    result set is created and leaves it after the suite, Ctrl-C included. Ship cases to other
    processes as data (:func:`benchkit.executors.task_spec` and
    :func:`benchkit.executors.run_task`), never as pickled code.

    The factory may raise ``benchkit.errors.BenchkitError`` for a problem the user can fix (a
    missing optional dependency, an unreachable cluster): the command stops with exit 2 and
    that message.

    :param register: the registration callable described above.
    """
