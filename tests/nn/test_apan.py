import pytest
import torch

from pyg_mspipe.nn import APANMemory, MailboxAttention
from pyg_mspipe.nn._apan_mailbox import Mailbox

from .common import MSG_DIM, NUM_NODES, compare
from .reference import RefAPANMemory

TOLERANCES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]


@pytest.mark.parametrize("dtype,tol", TOLERANCES)
@pytest.mark.parametrize("k,neighbors", [(3, 2), (10, 10)])
def test_apan_memory_matches_reference(dtype, tol, k, neighbors):
    torch.manual_seed(0)
    memory = APANMemory(NUM_NODES, MSG_DIM, 6, 5, mailbox_size=k, num_neighbors=neighbors)
    compare(memory, RefAPANMemory, dtype, tol)


def test_apan_ring_keeps_the_k_most_recent_mails():
    torch.manual_seed(0)
    memory = APANMemory(4, MSG_DIM, 6, 5, mailbox_size=3, num_neighbors=1)
    for i in range(5):  # node 0 gets one mail per batch
        memory.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([10 * i]),
                            torch.randn(1, MSG_DIM))
    assert sorted(memory.msg_store.t[0].tolist()) == [20, 30, 40]
    assert memory.msg_store.t[2].tolist() == [Mailbox.EMPTY_T] * 3


def test_apan_mails_reach_most_recent_neighbors():
    memory = APANMemory(6, MSG_DIM, 6, 5, mailbox_size=4, num_neighbors=1)
    msg = torch.randn(1, MSG_DIM)
    memory.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), msg)
    memory.update_state(torch.tensor([0]), torch.tensor([2]), torch.tensor([2]), msg)
    # 0's most recent neighbour (1 neighbour kept) is now 2, not 1
    memory.update_state(torch.tensor([0]), torch.tensor([3]), torch.tensor([3]), msg)
    times = memory.msg_store.t
    assert int((times[2] == 3).sum()) == 1  # delivered to 2
    assert not bool((times[1] == 3).any())  # not to 1 any more
    assert int((times[3] == 3).sum()) == 1  # its own


def test_apan_eval_updates_like_training_and_train_does_not_flush():
    torch.manual_seed(0)
    memory = APANMemory(5, MSG_DIM, 6, 5, mailbox_size=2)
    memory.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]),
                        torch.randn(1, MSG_DIM))
    z_train, _ = memory(torch.arange(5))
    before = memory.memory.clone()
    memory.eval()
    assert torch.equal(memory.memory, before)  # no flush
    z_eval, _ = memory(torch.arange(5))
    torch.testing.assert_close(z_eval, z_train)


def test_mailbox_attention_ignores_empty_slots():
    torch.manual_seed(0)
    att = MailboxAttention(4, 3, 2, num_heads=2)
    s, mail, t_enc = torch.randn(2, 4), torch.randn(2, 3, 3), torch.randn(2, 3, 2)
    valid = torch.tensor([[True, False, True], [True, True, True]])
    out = att(s, mail, t_enc, valid)
    garbage = mail.clone()
    garbage[0, 1] = 1e3
    torch.testing.assert_close(att(s, garbage, t_enc, valid)[0], out[0])
    with pytest.raises(ValueError, match="num_heads"):
        MailboxAttention(5, 3, 2, num_heads=2)


def test_apan_checkpoint_round_trip():
    torch.manual_seed(0)
    a = APANMemory(6, MSG_DIM, 6, 5, mailbox_size=3, num_neighbors=2)
    for i in range(3):
        a.update_state(torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([i, i]),
                       torch.randn(2, MSG_DIM))
    b = APANMemory(6, MSG_DIM, 6, 5, mailbox_size=3, num_neighbors=2)
    b.load_state_dict(a.state_dict())
    ev = (torch.tensor([3]), torch.tensor([4]), torch.tensor([9]), torch.randn(1, MSG_DIM))
    a.update_state(*ev)
    b.update_state(*ev)
    assert torch.equal(a.memory, b.memory)
    assert torch.equal(a.msg_store.mail, b.msg_store.mail)
    small = APANMemory(6, MSG_DIM, 6, 5, mailbox_size=2, num_neighbors=2)
    with pytest.raises(RuntimeError, match="Mailbox"):
        small.load_state_dict(a.state_dict())


def test_apan_keeps_its_attention_as_updater_and_loads_older_checkpoints():
    torch.manual_seed(0)
    memory = APANMemory(NUM_NODES, MSG_DIM, 6, 5)
    assert isinstance(memory.updater, MailboxAttention) and not hasattr(memory, "gru")
    state = memory.state_dict()
    older = {("gru." + k[len("updater."):] if k.startswith("updater.") else k): v
             for k, v in state.items()}  # the key names of earlier versions
    torch.manual_seed(1)
    other = APANMemory(NUM_NODES, MSG_DIM, 6, 5)
    other.load_state_dict(older)
    for key, value in other.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[key]), key
