package torture

import "math/rand/v2"

func buildMessageForTest(id string) []byte {
	return buildMessage(id, rand.New(rand.NewPCG(1, 2)))
}
