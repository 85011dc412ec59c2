/*
 * test_status_page.c - the status page's HTML: what an upstream or a
 * tenant id says is escaped, never markup; the page without the admin
 * part holds no tenant table; the admin check takes Bearer and Basic
 * admin:TOKEN and nothing else.
 */
#include "buf.h"
#include "config.h"
#include "queue.h"
#include "status_page.h"
#include "tenant.h"
#include "unit.h"
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

/* An upstream's error text is shown escaped; the page without the admin
 * part has no tenant table and no chart. */
static void test_upstream_error_escaped(void)
{
	struct config cfg;
	struct queue q;
	struct buf b;
	char *page;

	config_defaults(&cfg);
	queue_init(&q);
	upstream_status_note(503, 0, "<script>alert(1)</script> & more");
	buf_init(&b, 1u << 20);
	CHECK_EQ_INT(status_page_render(&b, &cfg, NULL, &q, 0), 0);
	CHECK((page = render_text(&b)) != NULL);
	CHECK(strstr(page, "<script") == NULL);
	CHECK(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more") != NULL);
	CHECK(strstr(page, "status 503") != NULL);
	CHECK(strstr(page, "<h2>Tenants</h2>") == NULL);
	CHECK(strstr(page, "<svg") == NULL);
	CHECK(strstr(page, "href=\"/?admin\"") != NULL);
	buf_free(&b);
	queue_destroy(&q);
	config_free(&cfg);
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
	RUN(test_upstream_error_escaped);
	RUN(test_admin_auth);
	return unit_done();
}
