/*
 * Device credentials for the local stack's Mosquitto (2.0, plugin API 5).
 *
 * The devices' password file (one `device_id:$6$salt$hash` line per device, appended by the
 * platform when it registers a device) is read incrementally: before deciding a connection,
 * the plugin reads only the lines appended since it last looked. Mosquitto's own
 * `password_file` is re-parsed whole on every SIGHUP, so registering one device cost a
 * reload that grew with the fleet (bench/README.md, Provisioning); here it costs a stat()
 * and the new line. A file replaced by another (a device removed or re-registered) is read
 * again whole, and the clients whose credential went or changed are disconnected.
 *
 * A device is who its credential says and nothing else: its client id must be its
 * username (its device id), and it may publish and receive only under devices/<its id>/.
 * A subscription elsewhere is granted but delivers nothing, as the ACL pattern before it.
 * Usernames not in the file (the platform's own accounts) are left to the next plugin
 * (dynamic security).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define SALT_MAX 64
#define HASH_B64_MAX 96

struct account {
	struct account *next;
	char *username;
	unsigned char salt[SALT_MAX];
	int salt_len;
	char hash_b64[HASH_B64_MAX];
};

struct table {
	struct account **slots;
	size_t capacity;
	size_t count;
};

static mosquitto_plugin_id_t *plugin_id;
static char *password_file;
static struct table accounts;
/* The file read so far: which one (a replacement has another inode) and up to where. */
static dev_t file_dev;
static ino_t file_ino;
static off_t file_offset;
static bool file_seen;

static uint64_t hash_of(const char *text)
{
	uint64_t h = 1469598103934665603ULL;
	for(; *text; text++){
		h ^= (unsigned char)*text;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct account *table_find(const struct table *table, const char *username)
{
	if(table->capacity == 0) return NULL;
	struct account *a = table->slots[hash_of(username) & (table->capacity - 1)];
	for(; a; a = a->next){
		if(strcmp(a->username, username) == 0) return a;
	}
	return NULL;
}

static bool table_grow(struct table *table)
{
	size_t capacity = table->capacity ? table->capacity * 2 : 1024;
	struct account **slots = calloc(capacity, sizeof(*slots));
	if(!slots) return false;
	for(size_t i = 0; i < table->capacity; i++){
		struct account *a = table->slots[i];
		while(a){
			struct account *next = a->next;
			size_t slot = hash_of(a->username) & (capacity - 1);
			a->next = slots[slot];
			slots[slot] = a;
			a = next;
		}
	}
	free(table->slots);
	table->slots = slots;
	table->capacity = capacity;
	return true;
}

/* Takes `account` (replacing an older one of the same username, returned for the caller). */
static struct account *table_put(struct table *table, struct account *account)
{
	struct account **link;
	if(table->count + 1 > table->capacity * 3 / 4 && !table_grow(table)) return account;
	link = &table->slots[hash_of(account->username) & (table->capacity - 1)];
	for(; *link; link = &(*link)->next){
		if(strcmp((*link)->username, account->username) == 0){
			struct account *old = *link;
			account->next = old->next;
			*link = account;
			old->next = NULL;
			return old;
		}
	}
	account->next = NULL;
	*link = account;
	table->count++;
	return NULL;
}

static void account_free(struct account *account)
{
	if(!account) return;
	free(account->username);
	free(account);
}

static void table_free(struct table *table)
{
	for(size_t i = 0; i < table->capacity; i++){
		struct account *a = table->slots[i];
		while(a){
			struct account *next = a->next;
			account_free(a);
			a = next;
		}
	}
	free(table->slots);
	memset(table, 0, sizeof(*table));
}

/* Standard base64 of up to SALT_MAX bytes, with or without its padding. */
static int decode_salt(const char *b64, size_t len, unsigned char *out)
{
	char padded[((SALT_MAX + 2) / 3) * 4 + 4];
	unsigned char decoded[sizeof(padded)];
	size_t pad = (4 - len % 4) % 4;
	int n;

	while(len > 0 && b64[len - 1] == '='){
		len--;
		pad++;
	}
	if(len == 0 || len + pad > sizeof(padded) - 1 || (len + pad) % 4 != 0) return -1;
	memcpy(padded, b64, len);
	memset(padded + len, '=', pad);
	n = EVP_DecodeBlock(decoded, (const unsigned char *)padded, (int)(len + pad));
	if(n < 0) return -1;
	n -= (int)pad;
	if(n <= 0 || n > SALT_MAX) return -1;
	memcpy(out, decoded, (size_t)n);
	return n;
}

/* `username:$6$<salt base64>$<sha-512(password, salt) base64>`, or NULL (logged). */
static struct account *parse_line(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *salt, *hash, *end = line + len;
	struct account *account;

	if(!colon || colon == line || (size_t)(end - colon) < 4 || memcmp(colon + 1, "$6$", 3) != 0){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "device auth: a line of %s is not username:$6$salt$hash; ignored", password_file);
		return NULL;
	}
	salt = colon + 4;
	hash = memchr(salt, '$', (size_t)(end - salt));
	if(!hash || (size_t)(end - hash - 1) >= HASH_B64_MAX){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "device auth: a line of %s has no usable hash; ignored", password_file);
		return NULL;
	}
	account = calloc(1, sizeof(*account));
	if(!account) return NULL;
	account->username = strndup(line, (size_t)(colon - line));
	account->salt_len = decode_salt(salt, (size_t)(hash - salt), account->salt);
	if(!account->username || account->salt_len < 0){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "device auth: a line of %s has a bad salt; ignored", password_file);
		account_free(account);
		return NULL;
	}
	memcpy(account->hash_b64, hash + 1, (size_t)(end - hash - 1));
	return account;
}

/*
 * Disconnects a device whose credential went or changed, unless that username is being
 * authenticated right now: the broker would then close the very connection it is deciding
 * and go on with it. Such a device's older session ends anyway when the new connection is
 * accepted, since its client id must be its username (the provisioner connects with the
 * changed credential before it returns).
 */
static void kick(const char *username, const char *authenticating)
{
	if(authenticating && strcmp(username, authenticating) == 0) return;
	mosquitto_kick_client_by_username(username, false);
}

/*
 * Reads the whole lines of `fd` from `offset` to `size` into `table`; returns the offset
 * after the last whole line (a line still being appended is read next time). Usernames
 * whose credential changed are disconnected when `kicks` is set.
 */
static off_t read_lines(int fd, off_t offset, off_t size, struct table *table, bool kicks, const char *authenticating)
{
	size_t length = (size_t)(size - offset);
	char *buffer = malloc(length ? length : 1);
	size_t got = 0;
	off_t consumed = offset;

	if(!buffer) return offset;
	while(got < length){
		ssize_t n = pread(fd, buffer + got, length - got, offset + (off_t)got);
		if(n <= 0) break;
		got += (size_t)n;
	}
	for(size_t start = 0; start < got;){
		char *newline = memchr(buffer + start, '\n', got - start);
		if(!newline) break;
		size_t line_len = (size_t)(newline - (buffer + start));
		if(line_len > 0 && buffer[start + line_len - 1] == '\r') line_len--;
		if(line_len > 0 && buffer[start] != '#'){
			struct account *account = parse_line(buffer + start, line_len);
			if(account){
				struct account *old = table_put(table, account);
				if(old && kicks && strcmp(old->hash_b64, account->hash_b64) != 0){
					kick(account->username, authenticating);
				}
				account_free(old);
			}
		}
		start = (size_t)(newline - buffer) + 1;
		consumed = offset + (off_t)start;
	}
	free(buffer);
	return consumed;
}

/* The whole file again; clients whose credential went or changed are disconnected. */
static void read_whole(int fd, const struct stat *st, bool kicks, const char *authenticating)
{
	struct table fresh = {0};
	off_t offset = read_lines(fd, 0, st->st_size, &fresh, false, NULL);

	if(kicks){
		for(size_t i = 0; i < accounts.capacity; i++){
			for(struct account *a = accounts.slots[i]; a; a = a->next){
				struct account *now = table_find(&fresh, a->username);
				if(!now || strcmp(now->hash_b64, a->hash_b64) != 0){
					kick(a->username, authenticating);
				}
			}
		}
	}
	table_free(&accounts);
	accounts = fresh;
	file_dev = st->st_dev;
	file_ino = st->st_ino;
	file_offset = offset;
	file_seen = true;
}

/*
 * Brings the accounts up to date with the file: usually one stat() and nothing to read.
 * `authenticating`: the username whose connection is being decided, if any.
 */
static void refresh(const char *authenticating)
{
	struct stat st;
	int fd;

	if(stat(password_file, &st) != 0){
		if(file_seen){
			/* The file is gone: so are its devices. */
			struct stat none = {0};
			file_seen = false;
			read_whole(-1, &none, true, authenticating);
			file_seen = false;
		}
		return;
	}
	if(file_seen && st.st_dev == file_dev && st.st_ino == file_ino && st.st_size == file_offset){
		return;
	}
	fd = open(password_file, O_RDONLY | O_CLOEXEC);
	if(fd < 0) return;
	if(fstat(fd, &st) == 0){
		if(file_seen && st.st_dev == file_dev && st.st_ino == file_ino && st.st_size >= file_offset){
			file_offset = read_lines(fd, file_offset, st.st_size, &accounts, true, authenticating);
		}else{
			read_whole(fd, &st, file_seen, authenticating);
		}
	}
	close(fd);
}

static bool password_matches(const struct account *account, const char *password)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	char encoded[HASH_B64_MAX + 4];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	if(!ctx) return false;
	ok = EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1
		&& EVP_DigestUpdate(ctx, password, strlen(password)) == 1
		&& EVP_DigestUpdate(ctx, account->salt, (size_t)account->salt_len) == 1
		&& EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1;
	EVP_MD_CTX_free(ctx);
	if(!ok) return false;
	EVP_EncodeBlock((unsigned char *)encoded, digest, (int)digest_len);
	size_t len = strlen(encoded);
	return len == strlen(account->hash_b64) && CRYPTO_memcmp(encoded, account->hash_b64, len) == 0;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const struct account *account;
	const char *client_id;
	(void)event;
	(void)userdata;

	if(!ed->username) return MOSQ_ERR_PLUGIN_DEFER;
	refresh(ed->username);
	account = table_find(&accounts, ed->username);
	if(!account) return MOSQ_ERR_PLUGIN_DEFER;
	client_id = mosquitto_client_id(ed->client);
	/* Another device's client id would take over (and close) that device's session. */
	if(!client_id || strcmp(client_id, ed->username) != 0) return MOSQ_ERR_AUTH;
	if(!ed->password || !password_matches(account, ed->password)) return MOSQ_ERR_AUTH;
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);
	size_t len;
	(void)event;
	(void)userdata;

	if(!username || !table_find(&accounts, username)) return MOSQ_ERR_PLUGIN_DEFER;
	/* Granted, as the ACL file's pattern did: what it may receive is checked per message. */
	if(ed->access == MOSQ_ACL_SUBSCRIBE || ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	len = strlen(username);
	if(strncmp(ed->topic, "devices/", 8) == 0 && strncmp(ed->topic + 8, username, len) == 0
			&& (ed->topic[8 + len] == '/' || ed->topic[8 + len] == '\0')){
		return MOSQ_ERR_SUCCESS;
	}
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "device_password_file") == 0){
			free(password_file);
			password_file = strdup(options[i].value);
		}
	}
	if(!password_file){
		mosquitto_log_printf(MOSQ_LOG_ERR, "device auth: plugin_opt_device_password_file is required");
		return MOSQ_ERR_INVAL;
	}
	plugin_id = identifier;
	refresh(NULL);
	if(mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL)
			|| mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL)){
		return MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	table_free(&accounts);
	free(password_file);
	password_file = NULL;
	file_seen = false;
	return MOSQ_ERR_SUCCESS;
}
