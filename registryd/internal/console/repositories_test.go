package console_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/console/consoletest"
)

var repoLink = regexp.MustCompile(`<a href="/console/repository\?name=([^"]+)">`)

// listed is the repository names of a list page, in order.
func listed(body string) []string {
	var out []string
	for _, m := range repoLink.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.ReplaceAll(m[1], "%2f", "/"))
	}
	return out
}

func TestRepositoryListSortsAndPages(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	for i := range 55 {
		// Random bytes: gzip at its fastest level varies a layer's size by
		// up to about 300 bytes around its length, so the lengths are 1 KiB
		// apart for the sizes to grow with i whatever the bytes are.
		noise := make([]byte, 1024*i)
		_, _ = rand.Read(noise)
		pushSmall(t, reg, fmt.Sprintf("team/r%02d", i), "v1", string(noise))
	}
	pushSmall(t, reg, "outside/tool", "v1", "tool")
	admin := signIn(t, reg, consoletest.Admin)

	status, body := admin.get("/console/repositories?sort=name")
	require.Equal(t, http.StatusOK, status)
	names := listed(body)
	require.Len(t, names, 50)
	require.Equal(t, "outside/tool", names[0])
	require.Contains(t, body, `rel="next"`)
	_, body = admin.get("/console/repositories?sort=name&page=2")
	require.Equal(t, []string{"team/r49", "team/r50", "team/r51", "team/r52", "team/r53", "team/r54"}, listed(body))
	require.Contains(t, body, "56 repositories, page 2 of 2")

	_, body = admin.get("/console/repositories?sort=size")
	names = listed(body)
	require.Equal(t, "team/r54", names[0], "largest first")
	require.Equal(t, "team/r53", names[1])
	_, body = admin.get("/console/repositories?sort=pushed")
	require.Equal(t, "outside/tool", listed(body)[0], "newest push first")

	_, body = admin.get("/console/repositories?q=R5&sort=size")
	require.Equal(t, []string{"team/r54", "team/r53", "team/r52", "team/r51", "team/r50"}, listed(body))

	// The outsider sees its one repository, in every order.
	outsider := signIn(t, reg, consoletest.Outsider)
	for _, sortBy := range []string{"name", "size", "pushed"} {
		_, body = outsider.get("/console/repositories?sort=" + sortBy)
		require.Equal(t, []string{"outside/tool"}, listed(body), sortBy)
		require.Contains(t, body, "1 repositories")
	}
}
