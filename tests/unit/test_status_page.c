/*
 * test_status_page.c - the status page's HTML: what an upstream or a
 * tenant id says is escaped, never markup; the page without the admin
 * part holds no tenant table and of the upstream's last error only its
 * status and class, never its text (which may name hosts or quote a
 * response body); the admin check takes Bearer and Basic admin:TOKEN and
 * nothing else.
 */
#include "buf.h"
#include "config.h"
#include "queue.h"
#include "status_page.h"
#include "tenant.h"
#include "unit.h"
#include "tmpstore.h"
#include "upstream_status.h"

static char *render_text(struct buf *b)
{
	if (buf_append(b, "", 1) < 0)
		return NULL;
	return (char *)b->p;
}

static void test_escape(void)
{
	struct buf b;
	const char *s = "<a href='x'>\"&\"</a>";

	buf_init(&b, 1024);
	CHECK_EQ_INT(status_page_escape(&b, s, strlen(s)), 0);
	CHECK(render_text(&b) != NULL);
	CHECK_STR((char *)b.p,
		  "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;");
	buf_free(&b);
}

#define ERROR_TEXT "<script>alert(1)</script> & http://internal.example:8428/x"

/* The page rendered with the upstream's last error ERROR_TEXT (503);
 * admin: with the admin part, from a store of its own. */
static char *render_with_error(struct buf *b, int admin)
{
	static char dir[64], path[96];
	struct config cfg;
	struct queue q;
	struct store *st = NULL;
	char *page = NULL;

	config_defaults(&cfg);
	queue_init(&q);
	upstream_status_note(503, 0, ERROR_TEXT);
	buf_init(b, 1u << 20);
	if (admin && tmpstore_open(dir, sizeof(dir), path, sizeof(path),
				   "status", &st, 1u << 24) < 0)
		goto out;
	if (status_page_render(b, &cfg, st, &q, admin) == 0)
		page = render_text(b);
out:
	if (st != NULL) {
		store_close(st);
		tmpdir_remove(dir);
	}
	queue_destroy(&q);
	config_free(&cfg);
	return page;
}

/* Without the admin token: the error's status and class, not its text; no
 * tenant table, no chart. */
static void test_upstream_error_hidden(void)
{
	struct buf b;
	char *page = render_with_error(&b, 0);

	CHECK(page != NULL);
	CHECK(strstr(page, "status 503 (server error)") != NULL);
	CHECK(strstr(page, "alert") == NULL);
	CHECK(strstr(page, "internal.example") == NULL);
	CHECK(strstr(page, "<h2>Tenants</h2>") == NULL);
	CHECK(strstr(page, "<svg") == NULL);
	CHECK(strstr(page, "href=\"/?admin\"") != NULL);
	buf_free(&b);
}

/* With it: the text too, escaped. */
static void test_upstream_error_escaped(void)
{
	struct buf b;
	char *page = render_with_error(&b, 1);

	CHECK(page != NULL);
	CHECK(strstr(page, "status 503 (server error)") != NULL);
	CHECK(strstr(page, "<script") == NULL);
	CHECK(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; "
		      "http://internal.example:8428/x") != NULL);
	CHECK(strstr(page, "<h2>Tenants</h2>") != NULL);
	buf_free(&b);
}

static void test_admin_auth(void)
{
	/* "admin:s3cret", "acme:s3cret", "admin:wrong" in base64 */
	CHECK_EQ_INT(tenant_admin_auth("Bearer s3cret", "s3cret"), 1);
	CHECK_EQ_INT(tenant_admin_auth("Basic YWRtaW46czNjcmV0", "s3cret"), 1);
	CHECK_EQ_INT(tenant_admin_auth("basic YWRtaW46czNjcmV0", "s3cret"), 1);
	CHECK_EQ_INT(tenant_admin_auth("Basic YWNtZTpzM2NyZXQ=", "s3cret"), 0);
	CHECK_EQ_INT(tenant_admin_auth("Basic YWRtaW46d3Jvbmc=", "s3cret"), 0);
	/* "admin:s3cret\0x": the token and more is not the token. */
	CHECK_EQ_INT(tenant_admin_auth("Basic YWRtaW46czNjcmV0AHg=", "s3cret"), 0);
	CHECK_EQ_INT(tenant_admin_auth("Bearer wrong", "s3cret"), 0);
	CHECK_EQ_INT(tenant_admin_auth("Basic !!!", "s3cret"), 0);
	CHECK_EQ_INT(tenant_admin_auth(NULL, "s3cret"), 0);
	CHECK_EQ_INT(tenant_admin_auth("Bearer s3cret", NULL), 0);
}

int main(void)
{
	RUN(test_escape);
	RUN(test_upstream_error_hidden);
	RUN(test_upstream_error_escaped);
	RUN(test_admin_auth);
	return unit_done();
}
