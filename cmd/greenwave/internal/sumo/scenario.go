package sumo

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Scenario is a SUMO scenario on disk: a network, its demand and optionally a configuration that names both.
type Scenario struct {
	// Name is the scenario's name: the directory's base name.
	Name string
	// Dir holds the files.
	Dir string
	// Net, Routes and Config are file paths; Config is empty when the directory has no .sumocfg.
	Net, Routes, Config string
}

// Resolve finds a scenario: nameOrDir is a directory holding one .net.xml and one .rou.xml (and optionally one
// .sumocfg), or the name of one of the repository's scenarios in repoRoot/deploy/sumo.
func Resolve(nameOrDir, repoRoot string) (Scenario, error) {
	dir := nameOrDir
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if repoRoot == "" || strings.ContainsRune(nameOrDir, filepath.Separator) {
			return Scenario{}, fmt.Errorf("scenario %q: no such directory", nameOrDir)
		}
		dir = filepath.Join(repoRoot, "deploy", "sumo", nameOrDir)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return Scenario{}, fmt.Errorf("scenario %q: neither a directory nor a scenario in %s", nameOrDir, filepath.Dir(dir))
		}
	}
	sc := Scenario{Name: filepath.Base(filepath.Clean(dir)), Dir: dir}
	var err error
	if sc.Net, err = onlyFile(dir, ".net.xml", true); err != nil {
		return Scenario{}, err
	}
	if sc.Routes, err = onlyFile(dir, ".rou.xml", true); err != nil {
		return Scenario{}, err
	}
	if sc.Config, err = onlyFile(dir, ".sumocfg", false); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// onlyFile returns the one file in dir whose name ends in suffix ("" when there is none and it is optional).
func onlyFile(dir, suffix string, required bool) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		return "", fmt.Errorf("scenario %s: %w", dir, err)
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) == 0 && !required:
		return "", nil
	case len(matches) == 0:
		return "", fmt.Errorf("scenario %s: no *%s file", dir, suffix)
	default:
		return "", fmt.Errorf("scenario %s: %d *%s files, want one", dir, len(matches), suffix)
	}
}

// laneLengths reads every lane's length (metres) from a SUMO network file.
func laneLengths(netFile string) (map[string]float64, error) {
	f, err := os.Open(netFile)
	if err != nil {
		return nil, fmt.Errorf("read lanes: %w", err)
	}
	defer f.Close()
	var net struct {
		Edges []struct {
			Lanes []struct {
				ID     string `xml:"id,attr"`
				Length string `xml:"length,attr"`
			} `xml:"lane"`
		} `xml:"edge"`
	}
	if err := xml.NewDecoder(f).Decode(&net); err != nil {
		return nil, fmt.Errorf("read lanes of %s: %w", netFile, err)
	}
	out := map[string]float64{}
	for _, e := range net.Edges {
		for _, l := range e.Lanes {
			v, err := strconv.ParseFloat(l.Length, 64)
			if err != nil {
				return nil, fmt.Errorf("read lanes of %s: lane %s: length %q", netFile, l.ID, l.Length)
			}
			out[l.ID] = v
		}
	}
	return out, nil
}
