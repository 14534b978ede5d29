/* MjpegStream: a live MJPEG stream (multipart/x-mixed-replace, as
 * mjpeg-fcgi serves it) in a Vue 3 page.
 *
 *   import MjpegStream from './MjpegStream.js';
 *   <MjpegStream src="/stream/demo" :width="256" :height="256" alt="demo" />
 *
 * Browsers render multipart/x-mixed-replace only in an <img> (or as a page of
 * its own); a <video> has no decoder for it and stays blank. So this component
 * is an <img> that:
 *
 *  - sets its src to "" before it is removed: otherwise the browser keeps
 *    the stream's connection open after the element is gone, and six such
 *    connections (the HTTP/1.1 limit per server) stall the whole page;
 *  - reconnects after an `error` (server down, 404, 503 over the viewer
 *    limit), waiting reconnectMs, then twice as long each time up to 30 s,
 *    with a `_=` cache buster so that the browser really asks again
 *    (mjpeg-fcgi ignores `_`);
 *  - closes the stream while the page is hidden and reopens it when shown.
 *
 * What it cannot see: Chromium fires `load` once per connection (not per
 * frame) and no event at all when a stream ends or is cut; the picture just
 * stops. A page that must notice that calls the exposed reconnect() (for
 * example when its own status poll sees the server come back), as
 * ../viewer.js does.
 *
 * A plain object with a render function: works with Vue's ESM browser build
 * (import map, as in index.html), the runtime-only builds and any bundler.
 * Other attributes (class, style, id) go to the <img>.
 */
import { h } from 'vue';

const MAX_BACKOFF_MS = 30000;

/* The URL with `_` set to something new. */
function withCacheBuster(src) {
	const url = new URL(src, document.baseURI);
	url.searchParams.set('_', Date.now().toString(36) + Math.random().toString(36).slice(2, 6));
	return url.href;
}

export default {
	name: 'MjpegStream',

	props: {
		src: { type: String, required: true },
		width: { type: [Number, String], default: undefined },
		height: { type: [Number, String], default: undefined },
		alt: { type: String, default: 'live stream' },
		/* first reconnect delay in ms; doubles after each failed attempt */
		reconnectMs: { type: Number, default: 1000 },
	},

	/* `error` with { attempt, delayMs } each time the stream fails and a
	 * reconnect is scheduled. (No per-frame event: browsers do not report
	 * each part of a multipart stream.) */
	emits: ['error'],

	expose: ['reconnect'],

	created() {
		/* not reactive: the <img>'s src is managed here, not by the template */
		this.retryTimer = null;
		this.attempt = 0;
	},

	mounted() {
		document.addEventListener('visibilitychange', this.onVisibility);
		if (!document.hidden)
			this.open(this.src);
	},

	beforeUnmount() {
		document.removeEventListener('visibilitychange', this.onVisibility);
		this.cancelRetry();
		this.close();   /* before Vue removes the <img>: ends the download */
	},

	watch: {
		src() {
			this.reconnect();
		},
	},

	methods: {
		open(url) {
			const img = this.$refs.img;
			if (img)
				img.src = url;
		},

		close() {
			const img = this.$refs.img;
			if (img && img.getAttribute('src'))
				img.src = '';
		},

		cancelRetry() {
			clearTimeout(this.retryTimer);
			this.retryTimer = null;
		},

		/* Opens a new connection now, forgetting the back-off. */
		reconnect() {
			this.cancelRetry();
			this.attempt = 0;
			/* a new src ends the old connection; "" first would queue an
			 * error event that lands on the new one */
			if (document.hidden)
				this.close();
			else
				this.open(withCacheBuster(this.src));
		},

		onLoad() {
			/* the first part of a connection arrived */
			this.attempt = 0;
		},

		onError() {
			const img = this.$refs.img;
			/* setting src to "" (done on purpose) fires error too */
			if (!img || !img.getAttribute('src') || this.retryTimer)
				return;
			const delayMs = Math.min(Math.max(this.reconnectMs, 100) * 2 ** this.attempt,
			                         MAX_BACKOFF_MS);
			this.attempt++;
			this.close();
			this.$emit('error', { attempt: this.attempt, delayMs });
			this.retryTimer = setTimeout(() => {
				this.retryTimer = null;
				if (!document.hidden)
					this.open(withCacheBuster(this.src));
			}, delayMs);
		},

		onVisibility() {
			if (document.hidden) {
				this.cancelRetry();
				this.close();
			} else {
				this.reconnect();
			}
		},
	},

	render() {
		return h('img', {
			ref: 'img',
			width: this.width,
			height: this.height,
			alt: this.alt,
			onLoad: this.onLoad,
			onError: this.onError,
		});
	},
};
