"""The write-back exchange takes the memories whose messages come from the
events alone (TGN, JODIE) and refuses the others with a clear error before
any collective (APAN's mails and DyRep's messages are built from the
memory)."""
import pytest

from pyg_mspipe.distributed import WriteBackExchange
from pyg_mspipe.nn import APANMemory, DyRepMemory


@pytest.mark.parametrize("memory", [
    APANMemory(10, 3, 8, 8, mailbox_size=2, num_neighbors=2),
    DyRepMemory(10, 3, 8, 8, embedding_dim=4),
], ids=["apan", "dyrep"])
def test_exchange_refuses_memories_with_their_own_messages(memory):
    with pytest.raises(NotImplementedError, match=type(memory).__name__):
        WriteBackExchange(memory, context=None)
