package topology

import "testing"

func TestExampleTopologyIsValid(t *testing.T) {
	t.Parallel()
	if _, err := Load("../../config/topology.yaml"); err != nil {
		t.Fatal(err)
	}
}
