# The C++ core's interface for type checkers (py.typed ships). Regenerate after changing the
# bindings: pybind11-stubgen eigengru._core -o <dir>; tests/test_core_stub.py checks that this
# file names every class, function and method the module has.
"""
eigengru's C++ core. Use the eigengru package; this module trusts its caller.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['GRUCellFloat32', 'GRUCellFloat64', 'QuantizedGRU', 'StackSpec', 'StackStepFloat32', 'StackStepFloat64', 'StreamFloat32', 'StreamFloat64', 'TrainingCacheFloat32', 'TrainingCacheFloat64', 'backward', 'build_info', 'forward', 'forward_training', 'get_num_threads', 'path_counts', 'quantized_kernel', 'set_num_threads', 'supported_isas']
class StackSpec:
    """
    The shape of a stack of GRU layers.
    """
    def __init__(self, input_size: typing.SupportsInt | typing.SupportsIndex, hidden_size: typing.SupportsInt | typing.SupportsIndex, num_layers: typing.SupportsInt | typing.SupportsIndex, bidirectional: bool, reset_after: bool, dropout: typing.SupportsFloat | typing.SupportsIndex, reverse: bool = False, functions: typing.Any = None, input_dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0, recurrent_dropout: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> None:
        ...
class TrainingCacheFloat32:
    """
    What a training forward keeps for its backward.
    """
    def __init__(self) -> None:
        ...
    def sequence_dropout_masks(self) -> list:
        """
        The per-sequence dropout masks of the training forward awaiting its backward, per layer-direction: (input mask (B, in) or None, recurrent mask (B, H) or None), copies.
        """
    @property
    def batch(self) -> int:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def ready(self) -> bool:
        ...
    @property
    def steps(self) -> int:
        ...
class TrainingCacheFloat64:
    """
    What a training forward keeps for its backward.
    """
    def __init__(self) -> None:
        ...
    def sequence_dropout_masks(self) -> list:
        """
        The per-sequence dropout masks of the training forward awaiting its backward, per layer-direction: (input mask (B, in) or None, recurrent mask (B, H) or None), copies.
        """
    @property
    def batch(self) -> int:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def ready(self) -> bool:
        ...
    @property
    def steps(self) -> int:
        ...
class StreamFloat32:
    """
    A unidirectional stack run one time step per call.
    """
    @typing.overload
    def __init__(self, spec: StackSpec, layers: list, batch: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @typing.overload
    def __init__(self, quantized: QuantizedGRU, batch: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def reset(self) -> None:
        ...
    def set_state(self, state: numpy.ndarray) -> None:
        ...
    def state(self) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def step(self, x: numpy.ndarray, out: numpy.ndarray) -> None:
        ...
    @property
    def batch(self) -> int:
        ...
class StreamFloat64:
    """
    A unidirectional stack run one time step per call.
    """
    def __init__(self, spec: StackSpec, layers: list, batch: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def reset(self) -> None:
        ...
    def set_state(self, state: numpy.ndarray) -> None:
        ...
    def state(self) -> numpy.typing.NDArray[numpy.float64]:
        ...
    def step(self, x: numpy.ndarray, out: numpy.ndarray) -> None:
        ...
    @property
    def batch(self) -> int:
        ...
class StackStepFloat32:
    """
    A stack's layer-directions packed for one-step calls.
    """
    def __init__(self, spec: StackSpec, layers: list) -> None:
        ...
    def forward(self, x: numpy.ndarray, h0: typing.Any) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
        ...
class StackStepFloat64:
    """
    A stack's layer-directions packed for one-step calls.
    """
    def __init__(self, spec: StackSpec, layers: list) -> None:
        ...
    def forward(self, x: numpy.ndarray, h0: typing.Any) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
        ...
class GRUCellFloat32:
    """
    One GRU layer applied one time step per call.
    """
    def __init__(self, weight_ih: numpy.ndarray, weight_hh: numpy.ndarray, bias_ih: typing.Any, bias_hh: typing.Any, reset_after: bool) -> None:
        ...
    def backward(self, x: numpy.ndarray, h: numpy.ndarray, record: numpy.ndarray, grad_h_next: numpy.ndarray, dx: typing.Any, dh: numpy.ndarray, grads: tuple, accumulate: bool) -> None:
        ...
    def forward(self, x: numpy.ndarray, h: numpy.ndarray, h_next: numpy.ndarray, record: typing.Any) -> None:
        ...
    @property
    def record_size(self) -> int:
        ...
class GRUCellFloat64:
    """
    One GRU layer applied one time step per call.
    """
    def __init__(self, weight_ih: numpy.ndarray, weight_hh: numpy.ndarray, bias_ih: typing.Any, bias_hh: typing.Any, reset_after: bool) -> None:
        ...
    def backward(self, x: numpy.ndarray, h: numpy.ndarray, record: numpy.ndarray, grad_h_next: numpy.ndarray, dx: typing.Any, dh: numpy.ndarray, grads: tuple, accumulate: bool) -> None:
        ...
    def forward(self, x: numpy.ndarray, h: numpy.ndarray, h_next: numpy.ndarray, record: typing.Any) -> None:
        ...
    @property
    def record_size(self) -> int:
        ...
class QuantizedGRU:
    """
    A stack with bfloat16 or int8 weights.
    """
    @staticmethod
    def load(path: str) -> tuple[dict, QuantizedGRU]:
        ...
    def __init__(self, spec: StackSpec, layers: list, precision: str) -> None:
        ...
    def forward(self, x: numpy.ndarray, h0: typing.Any, lengths: typing.Any) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]:
        ...
    def layers(self) -> list:
        ...
    def save(self, path: str, bias: bool, batch_first: bool) -> None:
        ...
    @property
    def precision(self) -> str:
        ...
@typing.overload
def backward(cache: TrainingCacheFloat32, grad_out: typing.Any, grad_h_n: typing.Any, grads: list, keep_cache: bool = False) -> tuple:
    ...
@typing.overload
def backward(cache: TrainingCacheFloat64, grad_out: typing.Any, grad_h_n: typing.Any, grads: list, keep_cache: bool = False) -> tuple:
    ...
def build_info() -> dict:
    ...
@typing.overload
def forward(spec: StackSpec, layers: list, x: numpy.typing.NDArray[numpy.float32], h0: typing.Any, lengths: typing.Any) -> tuple:
    ...
@typing.overload
def forward(spec: StackSpec, layers: list, x: numpy.typing.NDArray[numpy.float64], h0: typing.Any, lengths: typing.Any) -> tuple:
    ...
@typing.overload
def forward_training(spec: StackSpec, layers: list, x: numpy.typing.NDArray[numpy.float32], h0: typing.Any, lengths: typing.Any, dropout_seed: typing.SupportsInt | typing.SupportsIndex, cache: TrainingCacheFloat32) -> tuple:
    ...
@typing.overload
def forward_training(spec: StackSpec, layers: list, x: numpy.typing.NDArray[numpy.float64], h0: typing.Any, lengths: typing.Any, dropout_seed: typing.SupportsInt | typing.SupportsIndex, cache: TrainingCacheFloat64) -> tuple:
    ...
def get_num_threads() -> int:
    ...
def path_counts() -> dict:
    ...
def quantized_kernel(precision: str) -> str:
    ...
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def supported_isas() -> list[str]:
    ...
__version__: str = '0.1.0'
