"""Starting the training job with several ranks: torchrun locally, and on each node of an AWS Batch
multi-node parallel job (`python -m pipelines.training.launch SPEC_URI`).

torchrun starts `processes_per_node` copies of `pipelines.training.job` per machine and gives each
its RANK, LOCAL_RANK and WORLD_SIZE; the main node's address is where they rendezvous.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping

from models.threads import thread_budget

JOB_MODULE = "pipelines.training.job"
MAIN_PORT = 29500


class LaunchError(Exception):
    """The distributed job could not start, or a rank failed; the message says which."""


def torchrun_command(
    spec_uri: str,
    processes_per_node: int,
    nodes: int = 1,
    node_rank: int = 0,
    main_address: str = "127.0.0.1",
    main_port: int = MAIN_PORT,
) -> list[str]:
    """The torchrun invocation of one node."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nodes}",
        f"--nproc-per-node={processes_per_node}",
        f"--node-rank={node_rank}",
        f"--master-addr={main_address}",
        f"--master-port={main_port}",
        "-m",
        JOB_MODULE,
        spec_uri,
    ]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_local(spec_uri: str, processes: int, timeout_seconds: float = 6 * 3600) -> None:
    """`processes` CPU (gloo) or GPU (NCCL) ranks on this machine, bound to loopback."""
    env = {
        **os.environ,
        "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo"),
        "MLOPS_CONCURRENT_WORKERS": str(processes),  # the thread budget is shared among the ranks
        "OMP_NUM_THREADS": str(thread_budget(workers=processes).threads),
    }
    command = torchrun_command(spec_uri, processes, main_port=free_loopback_port())
    try:
        done = subprocess.run(command, env=env, timeout=timeout_seconds, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LaunchError(f"distributed training did not finish within {timeout_seconds:.0f} s") from exc
    if done.returncode != 0:
        raise LaunchError(
            f"distributed training ({processes} ranks) failed with exit code {done.returncode}; "
            "its checkpoint is kept: run the pipeline again to resume"
        )


def batch_node_command(spec_uri: str, env: Mapping[str, str], processes_per_node: int) -> list[str]:
    """The torchrun invocation of this node of an AWS Batch multi-node parallel job.

    Batch gives every node AWS_BATCH_JOB_NUM_NODES and AWS_BATCH_JOB_NODE_INDEX; the other nodes
    also get AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS, and the main node listens on its own.
    """
    try:
        nodes = int(env["AWS_BATCH_JOB_NUM_NODES"])
        index = int(env["AWS_BATCH_JOB_NODE_INDEX"])
        main_index = int(env.get("AWS_BATCH_JOB_MAIN_NODE_INDEX", "0"))
    except (KeyError, ValueError) as exc:
        raise LaunchError(f"not an AWS Batch multi-node job: {exc} is missing or not a number") from None
    if index == main_index:
        address = socket.gethostbyname(socket.gethostname())
    else:
        address = env.get("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS", "")
        if not address:
            raise LaunchError("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set on a child node")
    # torchrun's node rank 0 is the node everyone meets at: Batch's main node.
    rank = 0 if index == main_index else index + 1 if index < main_index else index
    return torchrun_command(spec_uri, processes_per_node, nodes, rank, address)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.training.launch SPEC_URI", file=sys.stderr)
        return 2
    per_node = int(os.environ.get("MLOPS_PROCESSES_PER_NODE", "1"))
    if "AWS_BATCH_JOB_NUM_NODES" not in os.environ:  # one machine, several GPUs
        command = torchrun_command(args[0], per_node, main_port=free_loopback_port())
    else:
        command = batch_node_command(args[0], os.environ, per_node)
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
