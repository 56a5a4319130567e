"""The names and shapes of a GRU stack's parameters, as torch.nn.GRU has them."""

from __future__ import annotations


def layer_parameters(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                     bias: bool) -> list[dict[str, tuple[int, ...]]]:
    """For each layer and direction, in PyTorch's order (layer-major, forward before reverse),
    its parameters' names and shapes: ``weight_ih_l{k}{suffix}`` (3H, I_k),
    ``weight_hh_l{k}{suffix}`` (3H, H) and, with ``bias``, ``bias_ih_...``, ``bias_hh_...``
    (3H,), where I_0 is the input size and I_k the directions times H above it."""
    directions = 2 if bidirectional else 1
    gates = 3 * hidden_size
    layers = []
    for layer in range(num_layers):
        inputs = input_size if layer == 0 else directions * hidden_size
        for suffix in ("", "_reverse")[:directions]:
            shapes = {f"weight_ih_l{layer}{suffix}": (gates, inputs),
                      f"weight_hh_l{layer}{suffix}": (gates, hidden_size)}
            if bias:
                shapes[f"bias_ih_l{layer}{suffix}"] = (gates,)
                shapes[f"bias_hh_l{layer}{suffix}"] = (gates,)
            layers.append(shapes)
    return layers
