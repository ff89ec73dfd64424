"""The guard inside every grading kernel.

It is set up by :mod:`graders.sandbox` in the kernel process after the kernel
started and before the first cell of a submission runs, and it stays until
the kernel is thrown away.  It is made of two audit hooks (PEP 578), which
nothing the learner's code does can remove:

* **the fence** refuses what a notebook under grading has no business doing:
  reading the course folder (hidden tests, solutions, other learners' work,
  the gradebook), writing anywhere but the submission's private copy,
  starting processes, sending signals, opening sockets, raising its own
  limits, loading native code, and the introspection that could reach the
  guard itself (tracing, other threads' frames, the garbage collector's
  object lists, swapping code objects);

* **the watch** sees IPython parse every cell and checks, for each one, that
  the kernel's own machinery is running it (no function of the learner's is
  on the call stack) and that the cells arrive exactly in the notebook's
  order, so no cell can be skipped, altered or faked.  Before each cell the
  instructor wrote (the notebook's locked cells: set-up and tests) it puts
  back what the learner's code may have changed: IPython's and the kernel's
  machinery (error display, input transformers, event callbacks, the reply
  path), ``builtins``, the modules and classes the tests use, the names the
  locked cells defined, and ``sys.stdout``/``sys.stderr``.  A stack that is
  not the kernel's, a cell out of order or a foreign thread still running
  ends the kernel at once (the submission then fails as tampered with).  While
  a test cell runs, the watch sees IPython execute each of its top-level
  statements and compares it with the test's own (fingerprints the grader
  compiled); when the test ends it says whether all of them ran (the grader
  fails a test that stopped with no error shown) and checks that the
  notebook's code, called by the test, replaced nothing the test relies on.
  After the last cell the grader runs one more cell; only the watch can
  answer it with the secret the grader gave it, which proves every cell ran.

Everything the hooks use is captured when they are made, so rebinding a
name, a module attribute or a class attribute afterwards does not change
what they do; neither hook calls code the learner could have defined.

What it does not stop (see the README, "Grading"): the functions a test
calls can return objects rigged to compare equal to anything, or patch what
the test uses next and put it back before the test ends; code that catches
the watch's own frame through a finalizer could read its state.  Running
kernels as their own system user in their own mount namespace is the
stronger fence.

This module uses the standard library only: it is imported by the kernel
launcher before anything of the learner's runs.
"""

from __future__ import annotations

import builtins
import gc
import marshal
import operator
import os
import pathlib
import posix
import signal
import _signal
import stat
import sys
import types

#: Exit status of a kernel the watch ended because of tampering.
TAMPER_EXIT = 86

#: Module name prefixes whose code runs the kernel: the only code allowed on
#: the stack when a cell is parsed.
KERNEL_PACKAGES = (
    "IPython", "ipykernel", "traitlets", "tornado", "zmq", "jupyter_client", "jupyter_core",
    "comm", "asyncio", "concurrent", "selectors", "threading", "contextlib", "functools",
    "runpy", "codeop", "anyio", "sniffio", "decorator", "matplotlib_inline", "graders",
    "_weakrefset", "weakref", "queue", "logging",
)

#: Standard modules tests commonly call into; restored like the course's libraries.
STDLIB_USED_BY_TESTS = (
    "builtins", "math", "cmath", "operator", "functools", "itertools", "collections", "statistics",
    "re", "json", "decimal", "fractions", "numbers", "string", "copy", "types", "typing", "abc",
    "inspect", "io", "os", "posixpath", "datetime", "random", "difflib", "unittest",
)

#: Audit events refused outright once the guard is up.
REFUSED_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "pty.spawn", "os.startfile", "os.kill", "os.killpg", "signal.pthread_kill",
    "os.symlink", "os.link", "sys.settrace", "sys.setprofile", "sys._current_frames",
    "sys._current_exceptions", "sys.addaudithook", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "resource.setrlimit", "resource.prlimit", "socket.__new__",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.sethostname", "urllib.Request",
    "webbrowser.open", "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags",
    "shutil.chown", "os.chown", "os.lchown",
})

#: Modules whose fresh import is refused (a second copy would bypass the guard's stand-ins).
REFUSED_REIMPORTS = frozenset({"signal", "_signal", "gc", "ctypes", "_ctypes", "posix", "os"})

#: Attributes of kernel objects that must keep their identity.
PINNED_ATTRIBUTES = frozenset({
    "kernel", "shell", "session", "user_ns", "user_global_ns", "user_module", "compile",
    "displayhook", "display_pub", "display_formatter", "events", "input_transformer_manager",
    "InteractiveTB", "SyntaxTB", "CustomTB", "builtin_trap", "display_trap", "iopub_socket",
    "iopub_thread", "shell_stream", "control_stream", "hooks", "payload_manager",
})

#: List or dict attributes of kernel objects whose contents are restored.
RESTORED_CONTAINERS = frozenset({
    "input_transformers_cleanup", "input_transformers_post", "ast_transformers",
    "custom_exceptions", "callbacks", "shell_handlers", "control_handlers", "cleanup_transforms",
    "line_transforms", "token_transformers",
})

_MISSING = object()


# ---------------------------------------------------------------------------
# What must not change: captured before learners' code runs
# ---------------------------------------------------------------------------


class Baseline:
    """Trusted code and the modules' and classes' attributes, as they were before any learner code.

    Made once in the kernel factory (:func:`prepare`), completed in each
    kernel (:func:`install`); a forked kernel inherits it for free.
    """

    def __init__(self) -> None:
        self.codes: dict[int, tuple] = {}       # id(code) -> (code, globals)
        self.modules: dict[str, tuple] = {}     # name -> (module, dict copy)
        self.classes: dict[int, tuple] = {}     # id(cls) -> (cls, dict copy)
        self.seen_modules: set[str] = set()
        self._entries: dict[tuple, tuple] = {}  # what the watch checks, by ("module", name) or ("class", id)

    # trusted code -----------------------------------------------------------

    def _add_code(self, code: types.CodeType, globals_: dict) -> None:
        if id(code) in self.codes:
            return
        self.codes[id(code)] = (code, globals_)
        for const in code.co_consts:
            if type(const) is types.CodeType:
                self._add_code(const, globals_)

    def _collect(self, value, owner: str, depth: int = 0) -> None:
        kind = type(value)
        if kind is types.FunctionType:
            self._add_code(value.__code__, value.__globals__)
            wrapped = value.__dict__.get("__wrapped__")
            if wrapped is not None and depth < 3:
                self._collect(wrapped, owner, depth + 1)
        elif kind in (staticmethod, classmethod):
            self._collect(value.__func__, owner, depth + 1)
        elif kind is property:
            for part in (value.fget, value.fset, value.fdel):
                if part is not None:
                    self._collect(part, owner, depth + 1)
        elif isinstance(value, type) and depth < 2 and getattr(value, "__module__", None) == owner:
            for member in list(vars(value).values()):
                self._collect(member, owner, depth + 1)

    def trust_module(self, module: types.ModuleType) -> None:
        """Take every function of ``module`` (and of its classes) as the kernel's own code."""
        name = getattr(module, "__name__", None)
        if not isinstance(name, str) or name in self.seen_modules:
            return
        self.seen_modules.add(name)
        for value in list(vars(module).values()):
            self._collect(value, name)

    def trust_kernel_modules(self) -> None:
        for name, module in list(sys.modules.items()):
            if module is not None and name.split(".")[0] in KERNEL_PACKAGES:
                self.trust_module(module)

    def trust_stack(self, frame) -> None:
        """The frames that lead to the guard's installation (the kernel launcher's) are trusted too."""
        while frame is not None:
            self._add_code(frame.f_code, frame.f_globals)
            frame = frame.f_back

    # modules and classes ----------------------------------------------------

    def protect_class(self, cls: type) -> None:
        for klass in getattr(cls, "__mro__", ()):
            if klass is object or id(klass) in self.classes:
                continue
            if klass.__flags__ & (1 << 8) == 0:  # Py_TPFLAGS_IMMUTABLETYPE unset: a class Python can change
                self.classes[id(klass)] = (klass, dict(vars(klass)))

    def protect_module(self, module: types.ModuleType, *, classes: bool = True) -> None:
        name = getattr(module, "__name__", None)
        if not isinstance(name, str) or name in self.modules:
            return
        attributes = dict(vars(module))
        self.modules[name] = (module, attributes)
        if not classes:
            return
        for value in attributes.values():
            if isinstance(value, type) and str(getattr(value, "__module__", "")).startswith(name.split(".")[0]):
                self.protect_class(value)

    def watched(self) -> tuple[list, list]:
        """What the watch puts back: the behaviour of each module and class (functions, classes, descriptors).

        Built in the factory for what it protects, so each kernel only adds its own classes.
        """
        entries = self._entries
        for name, (module, saved) in self.modules.items():
            if name != "builtins" and ("module", name) not in entries:  # builtins: see restore_names
                kept = {k: v for k, v in saved.items() if callable(v) or type(v) is types.ModuleType}
                entries["module", name] = (name, module, kept, tuple(kept), tuple(kept.values()))
        for key, (cls, saved) in self.classes.items():
            if ("class", key) not in entries:
                kept = {k: v for k, v in saved.items()
                        if k != "__annotations__" and (callable(v) or isinstance(v, _BEHAVIOUR))}
                entries["class", key] = (f"{cls.__module__}.{cls.__qualname__}", cls, kept, tuple(kept),
                                         tuple(kept.values()), [len(saved)])
        return ([entry for (kind, _), entry in entries.items() if kind == "module"],
                [entry for (kind, _), entry in entries.items() if kind == "class"])

    def protect_package(self, name: str) -> None:
        """A module the tests use, its submodules one level down, and their classes."""
        module = sys.modules.get(name)
        if module is None:
            return
        self.protect_module(module)
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType) and value.__name__.startswith(name + "."):
                self.protect_module(value)


def prepare(packages: list[str]) -> Baseline:
    """The baseline of a kernel factory: its kernel machinery and the course's libraries, imported.

    The kernel's own modules are trusted, not restored: what decides how a
    cell runs lives in the kernel's objects and their classes (restored
    before every locked cell), and every statement of a test is checked as
    it runs.
    """
    baseline = Baseline()
    baseline.trust_kernel_modules()
    for name in (*STDLIB_USED_BY_TESTS, *packages):
        baseline.protect_package(name)
    baseline.watched()
    return baseline


# ---------------------------------------------------------------------------
# The fence
# ---------------------------------------------------------------------------


def _make_fence(*, work_dir: str, protected: tuple, readable: tuple, writable: tuple,
                pid: int, trusted_code_ids: frozenset, pinned_ids: frozenset, guard_code_ids: frozenset):
    """The audit hook that refuses what grading never needs.  It keeps no state.

    Every name it uses is bound here, so rebinding builtins or module
    attributes later changes nothing; ``guard_code_ids`` are the watch's own
    functions, which may do what the fence refuses to notebooks.
    """
    lstat, readlink, getcwd, getframe = posix.lstat, posix.readlink, posix.getcwd, sys._getframe
    is_link = stat.S_ISLNK
    refused, refused_reimports = REFUSED_EVENTS, REFUSED_REIMPORTS
    str_, bytes_, int_, type_, len_, id_ = str, bytes, int, type, len, id
    OSError_ = OSError
    PosixPath, fspath_of_path = pathlib.PosixPath, pathlib.PurePath.__fspath__
    PurePosixPath = pathlib.PurePosixPath
    module_type, function_type = types.ModuleType, types.FunctionType
    Refused = PermissionError
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    own_proc = f"/proc/{pid}"
    work_prefix = work_dir + "/"

    def text(path):
        kind = type_(path)
        if kind is str_:
            return path
        if kind is bytes_:
            return path.decode("utf-8", "surrogateescape")
        if (kind is PosixPath or kind is PurePosixPath) and type_(path).__fspath__ is fspath_of_path:
            return fspath_of_path(path)
        raise Refused("leva grading: give file paths as text")

    def resolve(path: str) -> str:
        if not path.startswith("/"):
            if ".." in path.split("/"):
                raise Refused("leva grading: '..' is not allowed in relative paths")
            path = getcwd() + "/" + path
        pending = [part for part in path.split("/") if part and part != "."]
        pending.reverse()
        done: list = []
        links = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join(done) + ("/" if done else "") + part
            try:
                mode = lstat(candidate).st_mode
            except OSError_:
                done.append(part)
                continue
            if not is_link(mode):
                done.append(part)
                continue
            links += 1
            if links > 40:
                raise Refused("leva grading: too many symbolic links")
            target = readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."]
            parts.reverse()
            pending.extend(parts)
        return "/" + "/".join(done)

    def inside(path: str, roots: tuple) -> bool:
        for root in roots:
            if path == root or path.startswith(root + "/"):
                return True
        return False

    def check_proc(path: str) -> None:
        if path.startswith("/proc/"):
            parts = path.split("/")
            if parts[2].isdigit() and "/proc/" + parts[2] != own_proc:
                raise Refused("leva grading: other processes are off limits")
            if len_(parts) > 3 and parts[3] in ("mem", "map_files", "pagemap"):
                raise Refused("leva grading: the kernel's memory is off limits")

    def check_read(path) -> None:
        if type_(path) is int_:
            return
        real = resolve(text(path))
        check_proc(real)
        if real == work_dir or real.startswith(work_prefix) or inside(real, readable):
            return
        if inside(real, protected):
            raise Refused(f"leva grading: {text(path)!r} is outside the submission")

    def check_write(path) -> None:
        if type_(path) is int_:
            return
        real = resolve(text(path))
        if real == work_dir or real.startswith(work_prefix) or real in writable:
            return
        raise Refused(f"leva grading: only the submission's folder may be written ({text(path)!r})")

    def on_open(args) -> None:
        path, mode, flags = args
        writes = (type_(mode) is str_ and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (
            type_(flags) is int_ and flags & write_flags)
        (check_write if writes else check_read)(path)

    def first_writes(args) -> None:
        check_write(args[0])

    def two_writes(args) -> None:
        check_write(args[0])
        check_write(args[1])

    def no_dir_fd(args, at: int) -> None:
        # CPython reports "no directory descriptor" as -1 (or None)
        if len_(args) > at and args[at] is not None and args[at] != -1:
            raise Refused("leva grading: file operations relative to a directory descriptor are refused")

    def on_mkdir(args) -> None:
        no_dir_fd(args, 2)
        check_write(args[0])

    def on_remove(args) -> None:
        no_dir_fd(args, 1)
        check_write(args[0])

    def on_rename(args) -> None:
        no_dir_fd(args, 2)
        no_dir_fd(args, 3)
        two_writes(args)

    def on_listdir(args) -> None:
        path = args[0] if args else None
        check_read("." if path is None else path)

    def on_sqlite(args) -> None:
        database = args[0]
        if database in (":memory:", "", b":memory:", b""):
            return
        check_write(database)

    def on_setattr(args) -> None:
        target, name = args[0], args[1]
        if name == "__code__" and type_(target) is function_type and id_(target.__code__) in trusted_code_ids:
            raise Refused("leva grading: changing the kernel's own functions is refused")
        if name == "__class__" and (type_(target) is module_type or id_(target) in pinned_ids):
            raise Refused("leva grading: changing the class of the kernel's objects is refused")

    def on_function(args) -> None:
        if id_(args[0]) in trusted_code_ids:
            raise Refused("leva grading: copying the kernel's functions is refused")

    def on_import(args) -> None:
        if args[0] in refused_reimports:
            raise Refused(f"leva grading: importing {args[0]} again is refused")

    handlers = {
        "open": on_open, "os.listdir": on_listdir, "os.scandir": on_listdir,
        "os.mkdir": on_mkdir, "os.rmdir": on_remove, "os.remove": on_remove, "os.rename": on_rename,
        "os.truncate": first_writes, "os.chmod": first_writes, "os.utime": first_writes,
        "os.lchmod": first_writes, "shutil.copyfile": lambda a: (check_read(a[0]), check_write(a[1])),
        "shutil.copymode": lambda a: (check_read(a[0]), check_write(a[1])),
        "shutil.copystat": lambda a: (check_read(a[0]), check_write(a[1])),
        "shutil.copytree": lambda a: (check_read(a[0]), check_write(a[1])),
        "shutil.rmtree": first_writes, "shutil.move": two_writes,
        "shutil.make_archive": lambda a: (check_write(a[0]), check_read(a[2] or ".")),
        "shutil.unpack_archive": lambda a: (check_read(a[0]), check_write(a[1])),
        "sqlite3.connect": on_sqlite, "object.__setattr__": on_setattr,
        "object.__delattr__": on_setattr, "function.__new__": on_function, "import": on_import,
    }
    get_handler = handlers.get

    def fence(event, args):
        handler = get_handler(event)
        if handler is not None:
            handler(args)
        elif (event in refused or event.startswith("ctypes.")) and id_(getframe(1).f_code) not in guard_code_ids:
            raise Refused(f"leva grading: {event} is not allowed while grading")

    return fence


# ---------------------------------------------------------------------------
# The watch
# ---------------------------------------------------------------------------


def _kernel_objects(shell) -> list:
    """The objects whose attributes decide how a cell runs and how its outcome is reported."""
    kernel = getattr(shell, "kernel", None)
    candidates = [
        shell, kernel, getattr(kernel, "session", None), shell.compile, shell.displayhook,
        shell.display_pub, shell.display_formatter, shell.events, shell.input_transformer_manager,
        getattr(shell, "InteractiveTB", None), getattr(shell, "SyntaxTB", None), shell.builtin_trap,
        shell.display_trap, getattr(kernel, "iopub_thread", None), getattr(kernel, "iopub_socket", None),
        sys.stdout, sys.stderr, getattr(shell, "payload_manager", None),
    ]
    seen, objects = set(), []
    for obj in candidates:
        if obj is not None and id(obj) not in seen:
            seen.add(id(obj))
            objects.append(obj)
    return objects


#: Names IPython puts in the notebook's namespace, put back before every locked cell.
SYSTEM_NAMES = ("In", "Out", "get_ipython", "exit", "quit", "open", "_ih", "_oh", "_dh", "__builtins__",
                "__builtin__", "__name__")

#: Class members that are behaviour (besides anything callable): a change to one is the notebook's doing.
_BEHAVIOUR = (types.ModuleType, staticmethod, classmethod, property, types.GetSetDescriptorType,
              types.MemberDescriptorType)


def _snapshot_object(obj) -> tuple:
    """An object's attributes (and traitlets values), with the contents of its hook lists."""
    for name in RESTORED_CONTAINERS:  # traitlets make defaults on first use: make them now
        if name in getattr(type(obj), "__dict__", {}) or hasattr(type(obj), name):
            try:
                getattr(obj, name)
            except Exception:  # noqa: BLE001
                pass
    attributes = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
    traits = dict(obj._trait_values) if isinstance(getattr(obj, "_trait_values", None), dict) else None
    contents = {}
    for store in (attributes, traits or {}):
        for key, value in store.items():
            if key in RESTORED_CONTAINERS:
                if type(value) is list:
                    contents[key] = list(value)
                elif type(value) is dict:
                    contents[key] = {k: (list(v) if type(v) is list else v) for k, v in value.items()}
    cls = type(obj)
    methods = frozenset(name for name in dir(cls) if not name.startswith("__") and callable(getattr(cls, name, None)))
    return obj, cls, cls.__name__, methods, attributes, traits, contents


def _make_watch(*, shell, baseline: Baseline, read_config, write_out, exit_now):
    """The audit hook that checks and resets the kernel at every cell.  It never raises.

    Every name it uses is bound here, before any cell runs.
    """
    getframe, ast_parse_code = sys._getframe, type(shell.compile).ast_parse.__code__
    run_code_code, run_ast_nodes_code = type(shell).run_code.__code__, type(shell).run_ast_nodes.__code__
    code_type, fingerprint = types.CodeType, fingerprinter()
    codes = baseline.codes
    type_, id_, len_, list_, dict_, str_, bytes_ = type, id, len, list, dict, str, bytes
    callable_, range_, max_, enumerate_, zip_, base_exception = callable, range, max, enumerate, zip, BaseException
    method_type, function_type, missing = types.MethodType, types.FunctionType, _MISSING
    pinned_attributes, restored_containers = PINNED_ATTRIBUTES, RESTORED_CONTAINERS
    set_type_attr, del_type_attr = type.__setattr__, type.__delattr__
    current_frames = sys._current_frames
    library_prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix}) + ("<frozen",)
    sigmask, SIG_BLOCK, SIG_SETMASK = _signal.pthread_sigmask, signal.SIG_BLOCK, signal.SIG_SETMASK
    all_signals = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    setitimer, itimers = _signal.setitimer, (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
    gc_callbacks, gc_disable, gc_enable, gc_isenabled = gc.callbacks, gc.disable, gc.enable, gc.isenabled
    sys_module, builtins_dict, sys_modules = sys, builtins.__dict__, sys.modules
    sys_pinned = {name: getattr(sys, name) for name in ("stdout", "stderr", "modules", "meta_path", "path_hooks")}
    sys_lists = {"meta_path": list(sys.meta_path), "path_hooks": list(sys.path_hooks)}
    objects = [_snapshot_object(obj) for obj in _kernel_objects(shell)]
    for obj in _kernel_objects(shell):
        baseline.protect_class(type(obj))
    modules, classes = baseline.watched()
    registered = [(name, module) for name, module, *_ in modules if sys.modules.get(name) is module]
    any_, map_, is_not, ne = any, map, operator.is_not, operator.ne
    # the same, flattened, for one C-level pass over everything before each locked cell
    dict_get, proxy_get = dict.get, types.MappingProxyType.get
    module_dicts = [module.__dict__ for _, module, _, keys, _ in modules for _ in keys]
    module_keys = [key for *_, keys, _ in modules for key in keys]
    module_values = [value for *_, values in modules for value in values]
    class_proxies = [cls.__dict__ for _, cls, *_ in classes]
    class_sizes = [size[0] for *_, size in classes]
    class_dicts = [proxy for proxy, (_, _, _, keys, _, _) in zip(class_proxies, classes) for _ in keys]
    class_keys = [key for _, _, _, keys, _, _ in classes for key in keys]
    class_values = [value for _, _, _, _, values, _ in classes for value in values]
    user_ns, system_names, shell_traits = shell.user_ns, SYSTEM_NAMES, shell._trait_values
    threads_at_start = frozenset(current_frames())
    graveyard: list = []  # what was replaced: never freed while the kernel lives, so no finalizer runs here

    state = {"config": None, "next": 0, "owned": {}, "owned_upto": 0, "builtins": None, "system": None,
             "dead": False, "test": None}

    def same(current, saved) -> bool:
        if current is saved:
            return True
        # IPython hands out a new bound method (get_ipython) for every cell: the same method all the same
        return type_(current) is method_type and type_(saved) is method_type and current == saved

    def kernel_code(value) -> bool:
        """Is ``value`` a function (or method) of the kernel's own code?"""
        if type_(value) is method_type:
            value = value.__func__
        if type_(value) is not function_type:
            return False
        entry = codes.get(id_(value.__code__))
        return entry is not None and entry[0] is value.__code__ and entry[1] is value.__globals__

    def trusted(frame) -> bool:
        while frame is not None:
            entry = codes.get(id_(frame.f_code))
            if entry is None or entry[0] is not frame.f_code or entry[1] is not frame.f_globals:
                return False
            frame = frame.f_back
        return True

    def tamper(reason: str) -> None:
        state["dead"] = True
        write_out(f"tamper {reason}\n")
        exit_now()

    def note(what: str) -> None:
        write_out(f"restored {what}\n")

    def restore_list(owner: str, value: list, saved: list) -> None:
        kept = [item for item in value if [1 for old in saved if old is item] or kernel_code(item)]
        for index, old in enumerate_(saved):
            if not [1 for item in kept if item is old]:
                kept.insert(index, old)
        if len_(kept) != len_(value) or [1 for a, b in zip_(kept, value) if a is not b]:
            graveyard.append(list_(value))
            value[:] = kept
            note(owner)

    def restore_container(owner: str, value, saved) -> None:
        if type_(value) is list_ and type_(saved) is list_:
            restore_list(owner, value, saved)
        elif type_(value) is dict_ and type_(saved) is dict_:
            for name in list_(value):
                if name not in saved and not kernel_code(value[name]):
                    graveyard.append(value.pop(name))
                    note(f"{owner}[{name!r}]")
            for name, item in saved.items():
                current = value.get(name, missing)
                if type_(item) is list_ and type_(current) is list_:
                    restore_list(f"{owner}[{name!r}]", current, item)
                elif not same(current, item) and not kernel_code(current):
                    graveyard.append(current)
                    value[name] = item
                    note(f"{owner}[{name!r}]")

    def restore_store(owner: str, store: dict, saved: dict, contents: dict, methods: frozenset) -> None:
        """Put back what decides how cells run: pinned objects, hook lists, methods shadowed per instance.

        Other attributes (counters, the current message, values the kernel
        swaps in for each cell) are the kernel's business; so are methods the
        kernel itself swaps in (IPython wraps ``write`` to keep output history).
        """
        for key in list_(store):
            value = store[key]
            old = saved.get(key, missing)
            if key in contents and value is old:
                restore_container(f"{owner}.{key}", value, contents[key])
                continue
            if same(value, old):
                continue
            if key in pinned_attributes or key in restored_containers or (key in methods and not kernel_code(value)):
                graveyard.append(value)
                if old is missing:
                    del store[key]
                else:
                    store[key] = old
                note(f"{owner}.{key}")
        for key, old in saved.items():
            if key not in store and (key in pinned_attributes or key in restored_containers):
                store[key] = old
                note(f"{owner}.{key}")

    def restore_kernel() -> None:
        for obj, cls, owner, methods, attributes, traits, contents in objects:
            if type_(obj) is not cls:
                tamper(f"the class of the kernel's {owner} was changed")
                return
            if attributes:
                restore_store(owner, obj.__dict__, attributes, contents, methods)
            if traits is not None:
                restore_store(owner, obj._trait_values, traits, contents, frozenset())
        for name, value in sys_pinned.items():
            if sys_module.__dict__.get(name) is not value:
                graveyard.append(sys_module.__dict__.get(name))
                sys_module.__dict__[name] = value
                note(f"sys.{name}")
        for name, saved in sys_lists.items():
            restore_list(f"sys.{name}", sys_module.__dict__[name], saved)
        for name, module in registered:
            if sys_modules.get(name) is not module:
                graveyard.append(sys_modules.get(name))
                sys_modules[name] = module
                note(f"sys.modules[{name!r}]")
        for timer in itimers:
            setitimer(timer, 0)
        if gc_callbacks:
            graveyard.append(list_(gc_callbacks))
            gc_callbacks.clear()

    def replaced_in_libraries() -> bool:
        """Is any function, class or descriptor the watch keeps no longer there?  C-level comparisons only."""
        return (any_(map_(is_not, map_(dict_get, module_dicts, module_keys), module_values))
                or any_(map_(is_not, map_(proxy_get, class_dicts, class_keys), class_values)))

    def restore_libraries() -> None:
        """Functions, classes and submodules of the modules tests use; methods of their classes.

        Unchanged ones (nearly all) are recognised by C-level comparisons only.
        """
        if not (any_(map_(ne, map_(len_, class_proxies), class_sizes)) or replaced_in_libraries()):
            return
        for name, module, saved, keys, values in modules:
            current = module.__dict__
            if not any_(map_(is_not, map_(current.get, keys), values)):
                continue
            for key, value in saved.items():
                now = current.get(key, missing)
                if now is not value:
                    graveyard.append(now)
                    current[key] = value
                    note(f"{name}.{key}")
        for name, cls, saved, keys, values, size in classes:
            current = cls.__dict__
            if len_(current) == size[0] and not any_(map_(is_not, map_(current.get, keys), values)):
                continue
            for key in list_(current):
                if key not in saved and callable_(current[key]) and not kernel_code(current[key]):
                    graveyard.append(current[key])
                    del_type_attr(cls, key)
                    note(f"{name}.{key}")
            for key, value in saved.items():
                now = current.get(key, missing)
                if now is not value:
                    graveyard.append(now)
                    set_type_attr(cls, key, value)
                    note(f"{name}.{key}")
            size[0] = len_(current)  # what the class holds now, its library's own caches included
        class_sizes[:] = [size[0] for *_, size in classes]

    def restore_names() -> None:
        """``builtins``, IPython's names and the locked cells' names as they were; no shadowed builtins."""
        saved_builtins, owned, system = state["builtins"], state["owned"], state["system"]
        for key in list_(builtins_dict):
            if key not in saved_builtins:
                graveyard.append(builtins_dict.pop(key))
                note(f"builtins.{key}")
        for key, value in saved_builtins.items():
            if not same(builtins_dict.get(key, missing), value) and not kernel_code(builtins_dict.get(key)):
                graveyard.append(builtins_dict.get(key))
                builtins_dict[key] = value
                note(f"builtins.{key}")
        for name, value in system.items():
            if name not in owned and not same(user_ns.get(name, missing), value):
                graveyard.append(user_ns.get(name))
                user_ns[name] = value
                note(name)
        for name, value in owned.items():
            current = user_ns.get(name, missing)
            if current is not value:
                graveyard.append(current)
                if value is missing:
                    user_ns.pop(name, None)
                else:
                    user_ns[name] = value
                note(name)
        for name in list_(user_ns):
            if (type_(name) is str_ and name in saved_builtins and not name.startswith("__")
                    and name not in owned and name not in system):
                graveyard.append(user_ns.pop(name))
                note(f"{name} (shadowed a builtin)")

    def foreign_threads() -> bool:
        """Is a thread the notebook started still running the notebook's own code?"""
        for ident, frame in current_frames().items():
            if ident not in threads_at_start:
                while frame is not None:
                    if not frame.f_code.co_filename.startswith(library_prefixes):
                        return True
                    frame = frame.f_back
        return False

    def first_cell() -> None:
        state["config"] = read_config()
        state["builtins"] = dict_(builtins_dict)
        state["system"] = {key: user_ns[key] for key in system_names if key in user_ns}

    def remember_owned(upto: int) -> None:
        cells = state["config"]["cells"]
        for index in range_(state["owned_upto"], upto):
            for name in cells[index][2]:
                if name not in state["owned"]:
                    state["owned"][name] = user_ns.get(name, missing)
        state["owned_upto"] = max_(upto, state["owned_upto"])

    def changed_while_testing(test_names: tuple) -> str:
        """What the notebook's code replaced while a test ran (everything was put back before it): a name or ''.

        Only replacements count: libraries add attributes of their own as they go.
        """
        if replaced_in_libraries():
            owners = [(name, module.__dict__, keys, values) for name, module, _, keys, values in modules]
            owners += [(entry[0], proxy, entry[3], entry[4]) for entry, proxy in zip_(classes, class_proxies)]
            for name, current, keys, values in owners:
                for key, value in zip_(keys, values):
                    if current.get(key, missing) is not value:
                        return f"{name}.{key}"
        for key, value in state["builtins"].items():
            now = builtins_dict.get(key, missing)
            if not same(now, value) and not kernel_code(now):
                return f"builtins.{key}"
        for name, value in state["owned"].items():
            if name not in test_names and user_ns.get(name, missing) is not value:
                return name
        return ""

    def finish_test() -> None:
        """Say whether the test cell that just ran executed all its statements (``test N finished``).

        Its statements may have called the notebook's functions, which may not
        change what the test's later statements use.
        """
        position, _, (expected, test_names), done = state["test"]
        state["test"] = None
        changed = changed_while_testing(test_names)
        if changed:
            tamper(f"the notebook's code replaced {changed} while a test ran")
            return
        write_out(f"test {position} {'finished' if done[0] == len_(expected) else 'stopped'}\n")

    def on_cell(source: str, runner) -> None:
        if state["config"] is None:
            first_cell()
        if state["test"] is not None:
            finish_test()
            if state["dead"]:
                return
        config = state["config"]
        cells, index = config["cells"], state["next"]
        while index < len_(cells) and cells[index][0] is None:
            index += 1  # a cell IPython may refuse before parsing it
        if source == config["seal"] and index == len_(cells):
            if shell_traits.get("exit_now"):  # exit() or quit(): the kernel stops a moment later
                write_out("exited\n")
            else:
                write_out(f"seal {config['token']} {index}\n")
            state["next"] = index + 1
            return
        if index >= len_(cells) or cells[index][0] != source:
            tamper(f"cell {index + 1} is not the one the notebook has there")
            return
        remember_owned(index)
        kind = cells[index][1]
        if kind != "learner":
            restore_kernel()
            if state["dead"]:
                return
            restore_libraries()
            restore_names()
            if kind == "test" and foreign_threads():
                tamper("a thread the notebook started was still running when the tests ran")
                return
        if kind == "test" and cells[index][3] is not None:
            state["test"] = (index, runner, cells[index][3], [0])
        state["next"] = index + 1

    def on_statement(code, caller) -> None:
        """IPython executes one top-level statement of the running test cell: is it the test's next one?

        Only an execution by IPython's own ``run_code``, called by the
        ``run_ast_nodes`` of the very run that parsed this cell, counts.
        """
        if caller.f_code is not run_code_code:
            return
        outer = caller.f_back
        _, runner, (expected, _), done = state["test"]
        if outer is None or outer.f_code is not run_ast_nodes_code or outer.f_back is not runner:
            return
        try:
            matches = done[0] < len_(expected) and fingerprint(code) == expected[done[0]]
        except ValueError:  # a constant marshal cannot write: no compiler made that
            matches = False
        if not matches:
            tamper("a test cell executed a statement that is not the test's")
            return
        done[0] += 1

    def shielded(check, *args) -> None:
        """Run one of the watch's checks with signals held back and no garbage collection.

        Signal handlers and finalizers run Python code between any two
        bytecodes; none may run inside the watch.
        """
        previous = sigmask(SIG_BLOCK, all_signals)
        collecting = gc_isenabled()
        gc_disable()
        try:
            check(*args)
        finally:
            if collecting:
                gc_enable()
            sigmask(SIG_SETMASK, previous)

    def on_parse(source, caller) -> None:
        if trusted(caller):  # otherwise a parse started by someone else's code, not a cell of the notebook
            on_cell(source.decode("utf-8", "surrogateescape") if type_(source) is bytes_ else source, caller.f_back)

    def watch(event, args):
        if state["dead"]:
            return
        try:
            if event == "exec":
                if state["test"] is not None and type_(args[0]) is code_type:
                    shielded(on_statement, args[0], getframe(1))
            elif event == "compile":
                kind = type_(args[0])
                if kind is str_ or kind is bytes_:
                    caller = getframe(1)
                    if caller.f_code is ast_parse_code:
                        shielded(on_parse, args[0], caller)
        except base_exception:  # noqa: BLE001 - the watch must never raise into the kernel
            try:
                tamper("the guard could not check a cell")
            except base_exception:  # noqa: BLE001
                exit_now()

    return watch


def fingerprinter():
    """A function telling what identifies a compiled statement: bytecode, constants, names, first line.

    Not the file name, which IPython chooses per cell.  Constants are
    compared as marshal writes them, so no object's own ``__eq__`` runs.  It
    looks up no global name when called: the watch uses it while the
    notebook's code could have changed any module.
    """
    dumps, code_type, type_, tuple_ = marshal.dumps, types.CodeType, type, tuple

    def fingerprint(code) -> tuple:
        consts = tuple_([fingerprint(c) if type_(c) is code_type else dumps(c) for c in code.co_consts])
        return code.co_code, consts, code.co_names, code.co_varnames, code.co_firstlineno

    return fingerprint


def _nested_codes(code: types.CodeType) -> list:
    found = [code]
    for const in code.co_consts:
        if type(const) is types.CodeType:
            found.extend(_nested_codes(const))
    return found


def _disable_signals() -> None:
    """Stand-ins for the signal functions a notebook could use to interrupt the guard.

    Handlers run Python code between any two bytecodes, the guard's too; only
    SIGINT stays settable (the kernel uses it to interrupt a cell).
    """
    original, SIGINT = _signal.signal, signal.SIGINT

    def refused(*args, **kwargs):
        raise PermissionError("leva grading: signal handlers and timers are not available while grading")

    def sigint_only(signum, handler):
        if signum != SIGINT:
            refused()
        return original(signum, handler)

    for module_name in ("signal", "_signal"):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name in ("setitimer", "alarm", "set_wakeup_fd", "siginterrupt", "pthread_kill", "pthread_sigmask"):
            if hasattr(module, name):
                setattr(module, name, refused)
        module.signal = sigint_only


def install(baseline: Baseline, *, shell, work_dir: str, protected: list[str], readable: list[str],
            config_fd: int, out_fd: int) -> None:
    """Put the watch and the fence up in this kernel.  Call once, before the first cell."""
    baseline.trust_kernel_modules()
    baseline.trust_stack(sys._getframe(1))
    os_write, os_read, exit_ = posix.write, posix.read, posix._exit
    loads = marshal.loads

    def write_out(text: str) -> None:
        data = text.encode("utf-8", "replace")
        while data:
            data = data[os_write(out_fd, data):]

    def read_config() -> dict:
        chunks = []
        while True:
            chunk = os_read(config_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return loads(b"".join(chunks))

    def exit_now() -> None:
        exit_(TAMPER_EXIT)

    pinned = frozenset(id(obj) for obj in _kernel_objects(shell))
    guard_codes = frozenset(id(code) for code in _nested_codes(_make_watch.__code__))
    watch = _make_watch(shell=shell, baseline=baseline, read_config=read_config, write_out=write_out,
                        exit_now=exit_now)
    fence = _make_fence(
        work_dir=work_dir, protected=tuple(protected), readable=tuple(readable),
        writable=("/dev/null",), pid=os.getpid(), trusted_code_ids=frozenset(baseline.codes),
        pinned_ids=pinned, guard_code_ids=guard_codes)
    sys.addaudithook(watch)
    sys.addaudithook(fence)  # last: once it is up, no hook can be added
    _disable_signals()
