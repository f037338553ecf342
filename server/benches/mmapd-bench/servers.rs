//! The servers under test, each on its own multi-thread tokio runtime in its
//! own thread. In one runtime with the client, server and client tasks would
//! share workers and steal each other's time slices in ways a deployed
//! server never sees; spawning the release `mmapd` binary would isolate it
//! further, but `cargo bench` for this package does not build that binary,
//! and the bare baseline gets exactly the same treatment this way.

use std::{net::SocketAddr, path::Path, thread};

use tokio::sync::oneshot;

/// A server thread; dropping it stops the server and joins the thread.
pub struct ServerThread {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ServerThread {
    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `serve(listener, stopped)` on a fresh runtime in a new thread.
    fn spawn<F, Fut>(name: &str, serve: F) -> ServerThread
    where
        F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel();
        let (ready, bound) = std::sync::mpsc::channel();
        let tuned = name == "mmapd";
        let worker_name = name.to_owned();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                // Named workers, so a profile (`perf report --comm`) tells
                // the servers and the client apart.
                builder.thread_name(format!("{worker_name}-w"));
                if tuned {
                    tune(&mut builder);
                }
                let runtime = builder.enable_all().build().expect("server runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind 127.0.0.1:0");
                    ready.send(listener.local_addr().expect("addr")).ok();
                    serve(listener, stopped).await;
                });
            })
            .expect("spawn server thread");
        let addr = bound.recv().expect("server thread bound its port");
        ServerThread {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// mmapd over `root`, with its default configuration.
pub fn mmapd(root: &Path) -> ServerThread {
    let mut config = mmapd_server::Config::new(root);
    config.shutdown_grace = std::time::Duration::from_secs(1);
    ServerThread::spawn("mmapd", move |listener, stopped| async move {
        mmapd_server::run(listener, config, async {
            stopped.await.ok();
        })
        .await
        .expect("mmapd run");
    })
}

/// The bare tonic service answering from `data`.
pub fn bare(data: bytes::Bytes) -> ServerThread {
    ServerThread::spawn("bare-tonic", move |listener, stopped| async move {
        tonic::transport::Server::builder()
            .add_service(crate::bare::Bare { data })
            .serve_with_incoming_shutdown(
                // No Nagle delay, as mmapd's own accept loop sets.
                tokio_stream::StreamExt::map(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    |conn| conn.and_then(|c| c.set_nodelay(true).map(|()| c)),
                ),
                async {
                    stopped.await.ok();
                },
            )
            .await
            .expect("bare tonic serve");
    })
}

/// mmapd's runtime settings under test, from `MMAPD_BENCH_WORKERS` and
/// `MMAPD_BENCH_EVENT_INTERVAL` (tokio's defaults when unset), so one build
/// compares them.
fn tune(builder: &mut tokio::runtime::Builder) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    if let Some(workers) = var("MMAPD_BENCH_WORKERS") {
        builder.worker_threads(workers as usize);
    }
    if let Some(ticks) = var("MMAPD_BENCH_EVENT_INTERVAL") {
        builder.event_interval(ticks);
    }
}
